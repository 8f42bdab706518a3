#include "cli/data_tools.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "data/image_encode.h"
#include "data/stored_source.h"
#include "data/tar_writer.h"
#include "data/transforms.h"
#include "io/npy.h"
#include "trainer/datasets.h"
#include "trainer/run_setup.h"

namespace dgqa {
namespace {

namespace fs = std::filesystem;

// ---- dump-data --------------------------------------------------------------------------------

// Runs load(i) for i in [0, count) on `threads` threads.
void for_each_example(int64_t count, int threads, const std::function<void(int64_t)>& load) {
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  const auto work = [&] {
    for (int64_t i; (i = next++) < count;) {
      try {
        load(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = count;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();
  if (error) std::rethrow_exception(error);
}

// The inputs un-normalised back to 8-bit pixels and laid out in a grid with 2-pixel gaps.
Image contact_sheet(const std::vector<float>& inputs, int64_t count, int channels, int size,
                    const config::Data& data) {
  const std::vector<float> mean(
      per_channel_values({data.mean().begin(), data.mean().end()}, 0.f, channels, "data.mean"));
  const std::vector<float> stddev = stddev_values({data.std().begin(), data.std().end()}, channels);
  const int columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(count))));
  const int rows = static_cast<int>((count + columns - 1) / columns);
  constexpr int kGap = 2;
  Image sheet(columns * (size + kGap) + kGap, rows * (size + kGap) + kGap, channels);
  std::fill(sheet.pixels.begin(), sheet.pixels.end(), uint8_t{128});
  const int64_t plane = int64_t{size} * size;
  for (int64_t n = 0; n < count; ++n) {
    const int top = kGap + static_cast<int>(n / columns) * (size + kGap);
    const int left = kGap + static_cast<int>(n % columns) * (size + kGap);
    for (int c = 0; c < channels; ++c) {
      const float* channel = inputs.data() + (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) {
        const float pixel = std::round((channel[i] * stddev[c] + mean[c]) * 255.f);
        sheet.at(top + static_cast<int>(i / size), left + static_cast<int>(i % size), c) =
            static_cast<uint8_t>(std::clamp(pixel, 0.f, 255.f));
      }
    }
  }
  return sheet;
}

// ---- pack -----------------------------------------------------------------------------------

// One split's examples as files: the bytes and the extension of each, and the labels.
struct RawSplit {
  int64_t size = 0;
  std::vector<int32_t> labels;
  std::function<void(int64_t, std::vector<uint8_t>*, std::string*)> read;
};

RawSplit raw_split(const config::Config& config, const ModelConfig& model, bool train) {
  RawSplit split;
  if (is_encoded_format(config.data().format())) {
    std::shared_ptr<EncodedStore> store = open_encoded_store(config, model, train);
    split.size = store->size();
    for (int64_t i = 0; i < split.size; ++i) split.labels.push_back(store->label(i));
    split.read = [store](int64_t i, std::vector<uint8_t>* bytes, std::string* ext) {
      store->read(i, bytes);
      const std::string name = store->name(i);
      *ext = fs::path(name).extension().string();
      for (char& c : *ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    };
  } else {
    auto dataset = std::make_shared<Dataset>(load_dataset(config, model, train));
    split.size = dataset->num_examples;
    split.labels = dataset->labels;
    split.read = [dataset](int64_t i, std::vector<uint8_t>* bytes, std::string* ext) {
      *bytes = encode_png(stored_image(*dataset, i));
      *ext = ".png";
    };
  }
  return split;
}

std::string zero_padded(int64_t value, int64_t largest) {
  const size_t width = std::to_string(std::max<int64_t>(largest, 0)).size();
  std::string text = std::to_string(value);
  return std::string(width > text.size() ? width - text.size() : 0, '0') + text;
}

void write_plain_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
}

void report_progress(const std::string& split, int64_t done, int64_t total) {
  if (done == total || done % std::max<int64_t>(total / 10, 1) == 0) {
    std::fprintf(stderr, "pack: %s %lld/%lld images\n", split.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total));
  }
}

// <out>/<name>/<class>/<index>.<ext>, written under <name>.partial and renamed when complete.
void pack_folder(const RawSplit& split, const fs::path& out, const std::string& name,
                 int num_classes) {
  const fs::path partial = out / (name + ".partial");
  fs::remove_all(partial);
  std::vector<uint8_t> bytes;
  std::string ext;
  for (int64_t i = 0; i < split.size; ++i) {
    const fs::path folder = partial / zero_padded(split.labels[i], num_classes - 1);
    if (!fs::is_directory(folder)) fs::create_directories(folder);
    split.read(i, &bytes, &ext);
    write_plain_file(folder / (zero_padded(i, split.size - 1) + ext), bytes);
    report_progress(name, i + 1, split.size);
  }
  fs::rename(partial, out / name);
}

// <out>/<name>-NNNNNN.tar; returns the shard pattern relative to out.
std::string pack_shards(const RawSplit& split, const fs::path& out, const std::string& name,
                        int shard_size) {
  const int64_t shards = (split.size + shard_size - 1) / shard_size;
  std::vector<uint8_t> bytes;
  std::string ext;
  for (int64_t shard = 0; shard < shards; ++shard) {
    TarWriter tar((out / (name + "-" + zero_padded(shard, 999999) + ".tar")).string());
    const int64_t end = std::min(split.size, (shard + 1) * shard_size);
    for (int64_t i = shard * shard_size; i < end; ++i) {
      split.read(i, &bytes, &ext);
      const std::string key = zero_padded(i, split.size - 1);
      tar.add(key + ext, bytes.data(), bytes.size());
      const std::string label = std::to_string(split.labels[i]);
      tar.add(key + ".cls", label.data(), label.size());
      report_progress(name, i + 1, split.size);
    }
    tar.finish();
  }
  return name + "-{" + zero_padded(0, 999999) + ".." + zero_padded(shards - 1, 999999) + "}.tar";
}

// Every label below the largest has a training image: else a packed folder would lack that
// class's folder and number the later classes differently.
void check_classes_present(const RawSplit& train) {
  std::vector<bool> seen;
  for (int32_t label : train.labels) {
    if (label >= static_cast<int32_t>(seen.size())) seen.resize(label + 1, false);
    seen[label] = true;
  }
  for (size_t label = 0; label < seen.size(); ++label) {
    if (!seen[label]) {
      throw InputError("pack: class " + std::to_string(label) +
                       " has no training image; an image folder would number the classes "
                       "after it differently");
    }
  }
}

}  // namespace

void dump_data_command(const CommandLine& line, const config::Config& config, Communicator& comm) {
  check_output_file("--out", line.out_dir);
  if (!line.labels_out.empty()) check_output_file("--labels-out", line.labels_out);
  if (!line.grid_out.empty()) check_output_file("--grid", line.grid_out);
  const RunSetup setup(config, comm, RunParts::data_only(line.split == "train"));
  const ExampleSource& source = setup.split(line.split == "train");
  const int64_t count = std::min(line.dump_count, source.num_examples());
  if (count < line.dump_count) {
    std::fprintf(stderr, "dump-data: the %s split has %lld examples; writing all of them\n",
                 line.split.c_str(), static_cast<long long>(count));
  }
  const int64_t floats = source.input_floats();
  std::vector<float> inputs(count * floats);
  std::vector<int64_t> labels(count);
  for_each_example(count, std::max(1, config.data().workers()), [&](int64_t i) {
    labels[i] = source.load(i, /*epoch=*/0, inputs.data() + i * floats).label;
  });
  if (comm.rank() != 0) return;
  const int channels = setup.model_config.in_channels, size = setup.model_config.image_size;
  write_npy_f32(line.out_dir, inputs.data(), {count, channels, size, size});
  if (!line.labels_out.empty()) write_npy_i64(line.labels_out, labels.data(), {count});
  if (!line.grid_out.empty()) {
    write_png_file(line.grid_out, contact_sheet(inputs, count, channels, size, config.data()));
  }
  std::fprintf(stderr, "dump-data: wrote %lld %s examples (%s) to %s\n",
               static_cast<long long>(count), line.split.c_str(), source.description().c_str(),
               line.out_dir.c_str());
}

void pack_command(const CommandLine& line, const config::Config& config, Communicator& comm) {
  if (comm.world_size() > 1) throw InputError("dgqa pack: run it as one process, not under MPI");
  const fs::path out = line.out_dir;
  const bool folder = line.pack_as == "folder";
  const std::string train_name = config.data().train_split(), val_name = config.data().val_split();
  for (const std::string& name : {train_name, val_name}) {
    const fs::path first = folder ? out / name : out / (name + "-000000.tar");
    if (fs::exists(first)) {
      throw InputError("--out " + out.string() + ": " + first.string() +
                       " exists already; pack into a new folder");
    }
  }
  fs::create_directories(out);
  const ModelConfig model = model_config_from(config);
  const RawSplit train = raw_split(config, model, /*train=*/true);
  check_classes_present(train);
  const RawSplit val = raw_split(config, model, /*train=*/false);
  if (folder) {
    pack_folder(train, out, train_name, model.num_classes);
    pack_folder(val, out, val_name, model.num_classes);
    std::printf(
        "pack: wrote %s/{%s,%s}; read it with\n  --set data.format=IMAGE_FOLDER "
        "--set data.root=%s\n",
        out.c_str(), train_name.c_str(), val_name.c_str(), out.c_str());
  } else {
    const std::string train_shards = pack_shards(train, out, train_name, line.shard_size);
    const std::string val_shards = pack_shards(val, out, val_name, line.shard_size);
    std::printf(
        "pack: wrote %s/%s and %s; read them with\n  --set data.format=TAR_SHARDS "
        "--set data.root=%s --set data.train_shards=%s --set data.val_shards=%s\n",
        out.c_str(), train_shards.c_str(), val_shards.c_str(), out.c_str(), train_shards.c_str(),
        val_shards.c_str());
  }
}

}  // namespace dgqa
