// Writes the seed corpora and the generated dictionaries of the fuzz targets: small valid
// inputs made with dgqa's own writers (and libjpeg/libpng for the image modes dgqa does not
// write), each checked to read back without error. The output is committed as
// tests/fuzz/corpus/ and tests/fuzz/*.dict; regenerate it after changing a format:
//   cmake --build build-fuzz --target make_fuzz_seeds
//   build-fuzz/tests/fuzz/make_fuzz_seeds tests/fuzz
#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>
#include <png.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "data/cifar_reader.h"
#include "data/idx_reader.h"
#include "data/image_decode.h"
#include "data/image_encode.h"
#include "data/tar_shards.h"
#include "data/tar_writer.h"
#include "io/event_file.h"
#include "io/safetensors.h"
#include "tests/fuzz/checkpoint_inputs.h"
#include "tests/image_files.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"

namespace dgqa::fuzz {
namespace {

namespace fs = std::filesystem;
using Bytes = std::string;

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Seeds of one target: files written into corpus/<target>/.
class Corpus {
 public:
  Corpus(const std::string& root, const std::string& target) : dir_(root + "/corpus/" + target) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  void add(const std::string& name, const Bytes& bytes) const { write_bytes(path(name), bytes); }

 private:
  std::string dir_;
};

// A scratch directory for files that are read back while the seeds are made.
struct ScratchDir {
  std::string path = (fs::temp_directory_path() / "dgqa-fuzz-seeds").string();
  ScratchDir() { fs::create_directories(path); }
  ~ScratchDir() { fs::remove_all(path); }
};

Bytes be32(uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
          static_cast<char>(value >> 8), static_cast<char>(value)};
}

Bytes gzipped(const Bytes& bytes) {
  z_stream stream{};
  if (deflateInit2(&stream, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  Bytes packed(deflateBound(&stream, bytes.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(packed.data());
  stream.avail_out = static_cast<uInt>(packed.size());
  const int status = deflate(&stream, Z_FINISH);
  packed.resize(stream.total_out);
  deflateEnd(&stream);
  if (status != Z_STREAM_END) throw std::runtime_error("deflate failed");
  return packed;
}

// `count` pixel bytes 0, step, 2 * step, ... (mod 256).
Bytes ramp(size_t count, int step) {
  Bytes bytes(count, '\0');
  for (size_t i = 0; i < count; ++i) bytes[i] = static_cast<char>(i * step);
  return bytes;
}

// ---- safetensors ----

void safetensors_seeds(const std::string& root) {
  const Corpus corpus(root, "safetensors");
  SafetensorsWriter matrix;
  const float weights[6] = {0.5f, -1.f, 2.f, 0.f, 3.25f, -0.125f};
  matrix.add_f32("blocks.0.attn.qkv.weight", {2, 3}, weights);
  matrix.set_metadata("format", "pt");
  matrix.write(corpus.path("f32_matrix.safetensors"));

  SafetensorsWriter mixed;
  const int64_t steps[1] = {12};
  const float scalar[1] = {1.5f};
  mixed.add_i64("optimizer.steps", {1}, steps);
  mixed.add_f32("scale", {}, scalar);
  mixed.add_f32("empty", {0, 4}, nullptr);
  mixed.write(corpus.path("mixed.safetensors"));

  // Half-precision and byte tensors, which dgqa reads but does not write.
  const Bytes header = R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},)"
                       R"("u":{"dtype":"U8","shape":[1,3],"data_offsets":[8,11]}})";
  Bytes length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(header.size() >> (8 * i));
  const Bytes values("\x00\x3c\x00\xc0\x80\x3f\x00\x40\x01\x02\x03", 11);  // 1, -2, 1, 2, 1 2 3
  corpus.add("halves.safetensors", length + header + values);

  for (const char* name : {"f32_matrix.safetensors", "mixed.safetensors", "halves.safetensors"}) {
    SafetensorsFile::read(corpus.path(name));
  }
}

// ---- TensorBoard event files ----

// A run's event file (its first record holds the time the seeds were made), and the same file
// torn inside its last record, as a killed writer leaves it.
void event_file_seeds(const std::string& root) {
  const Corpus corpus(root, "event_file");
  const std::string path = corpus.path("three_steps.tfevents");
  {
    EventFileWriter writer(path);
    for (int64_t step = 1; step <= 3; ++step) {
      TensorBoardEvent event;
      event.wall_time = 1.7e9 + static_cast<double>(step);
      event.step = step;
      event.scalars = {{"train/loss", 2.f / static_cast<float>(step)},
                       {"allocation/layer_0/kv_1", 3.f}};
      writer.write(event);
    }
  }
  const Bytes whole = read_bytes(path);
  corpus.add("torn.tfevents", whole.substr(0, whole.size() - 5));
  for (const char* name : {"three_steps.tfevents", "torn.tfevents"}) {
    read_event_file(corpus.path(name));
  }
}

// ---- IDX and CIFAR ----

// The input of fuzz_idx: the images file's length (4 bytes, big-endian), the images, the labels.
Bytes idx_input(const Bytes& images, const Bytes& labels) {
  return be32(static_cast<uint32_t>(images.size())) + images + labels;
}

void idx_seeds(const std::string& root) {
  const Corpus corpus(root, "idx");
  const ScratchDir scratch;
  const Bytes images = be32(0x803) + be32(3) + be32(5) + be32(4) + ramp(3 * 5 * 4, 13);
  const Bytes labels = be32(0x801) + be32(3) + Bytes("\x02\x00\x01", 3);
  const Bytes no_images = be32(0x803) + be32(0) + be32(28) + be32(28);
  const Bytes no_labels = be32(0x801) + be32(0);
  const std::vector<std::pair<std::string, std::pair<Bytes, Bytes>>> seeds = {
      {"three_images.idx", {images, labels}},
      {"gzipped.idx", {gzipped(images), gzipped(labels)}},
      {"gzipped_labels.idx", {images, gzipped(labels)}},
      {"empty.idx", {no_images, no_labels}}};
  for (const auto& [name, files] : seeds) {
    corpus.add(name, idx_input(files.first, files.second));
    write_bytes(scratch.path + "/images", files.first);
    write_bytes(scratch.path + "/labels", files.second);
    read_idx_dataset(scratch.path + "/images", scratch.path + "/labels", "images", "labels");
  }
}

void cifar_seeds(const std::string& root) {
  const Corpus corpus(root, "cifar");
  const ScratchDir scratch;
  const Bytes image = ramp(3 * 32 * 32, 7);
  corpus.add("cifar10_one_record.bin", "\x07" + image);
  corpus.add("cifar10_two_records.bin", Bytes(1, '\0') + image + "\x09" + image);
  corpus.add("cifar100_one_record.bin", "\x03\x2a" + image);
  fs::copy_file(corpus.path("cifar10_two_records.bin"), scratch.path + "/test_batch.bin");
  fs::copy_file(corpus.path("cifar100_one_record.bin"), scratch.path + "/test.bin");
  read_cifar10_dataset(scratch.path, /*train=*/false);
  read_cifar100_dataset(scratch.path, /*train=*/false);
}

// ---- Configs and checkpoints ----

// A config file of configs/ and `--set` overrides, as fuzz_config takes them.
Bytes config_input(const std::string& source_dir, const std::string& config,
                   const std::vector<std::string>& overrides) {
  Bytes input = read_bytes(source_dir + "/configs/" + config);
  for (const std::string& assignment : overrides) input += '\0' + assignment;
  return input;
}

void config_seeds(const std::string& root, const std::string& source_dir) {
  const Corpus corpus(root, "config");
  const ScratchDir scratch;
  const std::vector<std::tuple<std::string, std::string, std::vector<std::string>>> seeds = {
      {"default.pbtxt", "default.pbtxt", {}},
      {"kdgqa_with_overrides.pbtxt",
       "fmnist_kdgqa.pbtxt",
       {"optimizer.lr=3e-4", "model.num_kv_heads=2", "data.mean=0.5", "train.backend=cpu"}},
      {"cifar10_with_overrides.pbtxt",
       "datasets/cifar10_vit_s.pbtxt",
       {"data.root=/data/cifar10", "model.attention=PGQA", "data.std=", "checkpoint.keep_last=0"}},
      {"tiny_imagenet_as_shards.pbtxt",
       "datasets/tiny_imagenet_vit_s.pbtxt",
       {"data.format=TAR_SHARDS", "data.root=/data/shards",
        "data.train_shards=train-{000000..000003}.tar", "data.val_shards=val-000000.tar"}}};
  for (const auto& [name, config, overrides] : seeds) {
    corpus.add(name, config_input(source_dir, config, overrides));
    write_bytes(scratch.path + "/config.pbtxt", read_bytes(source_dir + "/configs/" + config));
    load_config(scratch.path + "/config.pbtxt", overrides);
  }
}

// The text of a checkpoint's state.pbtxt for kCheckpointRunConfig, without the checksum line.
std::string state_text(int64_t step, int64_t epoch, int64_t batch_in_epoch) {
  checkpoint::State state;
  state.set_step(step);
  state.set_epoch(epoch);
  state.set_batch_in_epoch(batch_in_epoch);
  state.set_world_size(2);
  state.set_version(DGQA_VERSION);
  for (const auto& [name, bytes] :
       {std::pair{"model.safetensors", Bytes(kModelFileBytes)},
        std::pair{"optimizer.safetensors", Bytes(kOptimizerFileBytes)}}) {
    checkpoint::FileChecksum* file = state.add_files();
    file->set_name(name);
    file->set_bytes(static_cast<int64_t>(bytes.size()));
    file->set_crc32(static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size()))));
  }
  checkpoint::LayerState* layer = state.add_layers();
  layer->add_cache(0.25f);
  layer->add_cache(0.75f);
  layer->add_allocation(1);
  layer->add_allocation(1);
  if (!google::protobuf::TextFormat::ParseFromString(kCheckpointRunConfig,
                                                     state.mutable_config())) {
    throw std::runtime_error("kCheckpointRunConfig does not parse");
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(state, &text);
  return text;
}

void checkpoint_seeds(const std::string& root) {
  const Corpus corpus(root, "checkpoint");
  const ScratchDir scratch;
  const std::string dir = scratch.path + "/checkpoint";
  fs::create_directories(dir);
  write_bytes(dir + "/model.safetensors", kModelFileBytes);
  write_bytes(dir + "/optimizer.safetensors", kOptimizerFileBytes);
  config::Config run_config;
  google::protobuf::TextFormat::ParseFromString(kCheckpointRunConfig, &run_config);
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"step4.pbtxt", state_text(4, 0, 4)},
      {"step5_epoch1.pbtxt", state_text(5, 1, 1)},
      {"step10_sealed.pbtxt", sealed_state_text(state_text(10, 2, 2))}};
  for (const auto& [name, text] : seeds) {
    corpus.add(name, text);
    write_bytes(dir + "/state.pbtxt", sealed_state_text(text));
    open_checkpoint(dir, run_config);
  }
}

// Every field and enum value name of `type` and the messages under it (the schemas have no
// cycles), into *words; with `paths`, also each scalar field's `--set` prefix "path.to.field=".
void schema_words(const google::protobuf::Descriptor& type, const std::string& path, bool paths,
                  std::set<std::string>* words) {
  for (int i = 0; i < type.field_count(); ++i) {
    const google::protobuf::FieldDescriptor& field = *type.field(i);
    const std::string field_path = path.empty() ? field.name() : path + "." + field.name();
    words->insert(field.name());
    if (field.message_type() != nullptr) {
      schema_words(*field.message_type(), field_path, paths, words);
    } else if (paths) {
      words->insert(field_path + "=");
    }
    if (field.enum_type() != nullptr) {
      for (int v = 0; v < field.enum_type()->value_count(); ++v) {
        words->insert(field.enum_type()->value(v)->name());
      }
    }
  }
}

// A libFuzzer dictionary: one quoted word a line.
void write_dictionary(const std::string& path, const std::set<std::string>& words) {
  std::string text = "# Generated by tests/fuzz/make_seeds.cc from the protobuf schema.\n";
  for (const std::string& word : words) text += "\"" + word + "\"\n";
  write_bytes(path, text);
}

// ---- Images ----

// The input of fuzz_image_decode: the 5 option bytes, then the file.
Bytes image_input(uint8_t options, uint8_t left, uint8_t top, uint8_t width, uint8_t height,
                  const Bytes& file) {
  return Bytes{static_cast<char>(options), static_cast<char>(left), static_cast<char>(top),
               static_cast<char>(width), static_cast<char>(height)} +
         file;
}

// A PNG of one of the modes dgqa reads but does not write, through libpng.
Bytes encode_png_mode(int width, int height, int bit_depth, int color_type, bool interlaced) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  Bytes out;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("libpng could not write a seed");
  }
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, png_size_t size) {
        static_cast<Bytes*>(png_get_io_ptr(p))->append(reinterpret_cast<char*>(data), size);
      },
      nullptr);
  png_set_IHDR(png, info, width, height, bit_depth, color_type,
               interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    png_color palette[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {40, 80, 255}};
    png_byte alpha[2] = {0, 128};
    png_set_PLTE(png, info, palette, 4);
    png_set_tRNS(png, info, alpha, 2, nullptr);
  }
  png_write_info(png, info);
  const int channels = png_get_channels(png, info);
  const size_t row_bytes = (static_cast<size_t>(width) * channels * bit_depth + 7) / 8;
  Bytes rows = ramp(row_bytes * height, 37);  // 2-bit palette indices: all 4 entries exist
  std::vector<png_bytep> pointers;
  for (int y = 0; y < height; ++y) {
    pointers.push_back(reinterpret_cast<png_bytep>(rows.data() + y * row_bytes));
  }
  png_write_image(png, pointers.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

void image_seeds(const std::string& root) {
  const Corpus corpus(root, "image_decode");
  tests::JpegOptions gray, progressive, cmyk, ycck, full_chroma;
  gray.input = gray.stored = JCS_GRAYSCALE;
  progressive.progressive = true;
  cmyk.input = cmyk.stored = JCS_CMYK;
  ycck.input = JCS_CMYK;
  ycck.stored = JCS_YCCK;
  full_chroma.h_samp = full_chroma.v_samp = 1;
  const auto as_bytes = [](const std::vector<uint8_t>& bytes) {
    return Bytes(bytes.begin(), bytes.end());
  };
  Image rgb(7, 5, 3), l(6, 6, 1);
  for (size_t i = 0; i < rgb.pixels.size(); ++i) rgb.pixels[i] = static_cast<uint8_t>(i * 11);
  for (size_t i = 0; i < l.pixels.size(); ++i) l.pixels[i] = static_cast<uint8_t>(i * 29);
  // Option byte: bit 0 one channel; bits 1-2 the JPEG reduction's log2.
  const std::vector<std::pair<std::string, Bytes>> seeds = {
      {"rgb_420.jpg", image_input(0, 64, 32, 128, 200, tests::encode_jpeg(16, 12, 1))},
      {"gray.jpg", image_input(1, 0, 0, 255, 255, tests::encode_jpeg(9, 7, 2, gray))},
      {"progressive_half.jpg",
       image_input(2, 100, 100, 80, 80, tests::encode_jpeg(24, 16, 3, progressive))},
      {"cmyk.jpg", image_input(0, 0, 128, 255, 100, tests::encode_jpeg(8, 8, 4, cmyk))},
      {"ycck_gray.jpg", image_input(1, 10, 10, 200, 200, tests::encode_jpeg(10, 9, 5, ycck))},
      {"rgb_444_quarter.jpg",
       image_input(4, 30, 60, 255, 255, tests::encode_jpeg(33, 17, 6, full_chroma))},
      {"rgb.png", image_input(0, 50, 50, 150, 150, as_bytes(encode_png(rgb)))},
      {"gray_as_l.png", image_input(1, 0, 0, 255, 255, as_bytes(encode_png(l)))},
      {"palette_trns.png", image_input(0, 0, 0, 128, 128, encode_png_mode(5, 4, 2, 3, false))},
      {"gray16.png", image_input(1, 20, 20, 255, 255, encode_png_mode(3, 3, 16, 0, false))},
      {"gray_alpha.png", image_input(0, 0, 0, 255, 255, encode_png_mode(4, 2, 8, 4, false))},
      {"rgba16_interlaced.png", image_input(0, 90, 90, 90, 90, encode_png_mode(9, 9, 16, 6, true))},
      {"gray1.png", image_input(1, 0, 0, 255, 255, encode_png_mode(10, 3, 1, 0, false))}};
  for (const auto& [name, input] : seeds) {
    corpus.add(name, input);
    decode_image(reinterpret_cast<const uint8_t*>(input.data()) + 5, input.size() - 5, 3, name);
  }
}

// ---- Tar shards ----

void tar_seeds(const std::string& root) {
  const Corpus corpus(root, "tar_shards");
  Image pixel(1, 1, 3);
  const std::vector<uint8_t> png = encode_png(pixel);
  const std::string jpeg = tests::encode_jpeg(2, 2, 1);
  {
    TarWriter tar(corpus.path("two_samples.tar"));
    tar.add("n01/000000.png", png.data(), png.size());
    tar.add("n01/000000.cls", "0\n", 2);
    tar.add("n01/000000.json", "{}", 2);
    tar.add("n02/000001.JPG", jpeg.data(), jpeg.size());
    tar.add("n02/000001.cls", "17", 2);
    tar.finish();
  }
  {
    // A name over 100 bytes: ustar's prefix field holds its folders.
    const std::string folder(120, 'd');
    TarWriter tar(corpus.path("long_name.tar"));
    tar.add(folder + "/sample.cls", "3", 1);
    tar.add(folder + "/sample.png", png.data(), png.size());
    tar.finish();
  }
  for (const char* name : {"two_samples.tar", "long_name.tar"})
    open_tar_shards({corpus.path(name)});
}

void shard_list_seeds(const std::string& root) {
  const Corpus corpus(root, "shard_list");
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"range.txt", "train-{000000..000127}.tar"},
      {"alternatives.txt", "{a,b}-{8..10}.tar /abs/c.tar"},
      {"padded_lines.txt", "s-{7..0010}.tar\nval-000000.tar\tval-000001.tar"}};
  for (const auto& [name, patterns] : seeds) {
    corpus.add(name, patterns);
    expand_shard_list(patterns, "/data", "data.train_shards");
  }
}

}  // namespace
}  // namespace dgqa::fuzz

int main(int argc, char** argv) {
  using namespace dgqa::fuzz;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SOURCE_DIR/tests/fuzz\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  const std::string source_dir = (fs::path(root) / ".." / "..").lexically_normal().string();
  safetensors_seeds(root);
  event_file_seeds(root);
  idx_seeds(root);
  cifar_seeds(root);
  config_seeds(root, source_dir);
  checkpoint_seeds(root);
  image_seeds(root);
  tar_seeds(root);
  shard_list_seeds(root);
  std::set<std::string> config_words, state_words;
  schema_words(*dgqa::config::Config::descriptor(), "", true, &config_words);
  schema_words(*dgqa::checkpoint::State::descriptor(), "", false, &state_words);
  config_words.insert("\\x00");  // between the file and each override
  write_dictionary(root + "/config.dict", config_words);
  write_dictionary(root + "/checkpoint.dict", state_words);
  std::printf("wrote the seed corpora and dictionaries under %s\n", root.c_str());
  return 0;
}
