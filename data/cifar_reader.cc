#include "data/cifar_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/error.h"

namespace dgqa {
namespace {

constexpr int kChannels = 3;
constexpr int kSide = 32;
constexpr int kImageBytes = kChannels * kSide * kSide;

// How one CIFAR variant lays out its records.
struct CifarFormat {
  const char* name;
  int num_classes;
  int label_bytes;        // label bytes before the pixels of each record
  int used_label_offset;  // which of them is the label we keep
  int record_bytes() const { return label_bytes + kImageBytes; }
};

constexpr CifarFormat kCifar10{"CIFAR-10", 10, 1, 0};
constexpr CifarFormat kCifar100{"CIFAR-100", 100, 2, 1};  // coarse label, then fine label

std::string file_error(const std::string& path, const std::string& what) {
  return "data.root: " + path + ": " + what;
}

std::vector<char> read_whole_file(const std::string& path) {
  // A directory opens as a stream on Linux and then fails in seekg/tellg with no clear reason.
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw InputError(file_error(path, "is a directory, not a CIFAR data file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InputError(file_error(path, std::string("cannot open (") + std::strerror(errno) + ")"));
  }
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size < 0) throw InputError(file_error(path, "cannot determine the file size"));
  std::vector<char> bytes(static_cast<size_t>(size));
  in.seekg(0, std::ios::beg);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    throw InputError(file_error(path, "read error"));
  }
  return bytes;
}

// Appends the records of one file to *dataset.
void append_file(const std::string& path, const CifarFormat& format, Dataset* dataset) {
  std::vector<char> bytes = read_whole_file(path);
  const size_t record_bytes = format.record_bytes();
  if (bytes.empty() || bytes.size() % record_bytes != 0) {
    throw InputError(file_error(
        path, "size " + std::to_string(bytes.size()) + " bytes is not a positive multiple of the " +
                  std::to_string(record_bytes) + "-byte " + format.name + " record"));
  }
  const size_t num_records = bytes.size() / record_bytes;
  for (size_t r = 0; r < num_records; ++r) {
    const char* record = bytes.data() + r * record_bytes;
    int label = static_cast<uint8_t>(record[format.used_label_offset]);
    if (label >= format.num_classes) {
      throw InputError(file_error(path, "label " + std::to_string(label) + " of record " +
                                            std::to_string(r) + " is not below the " +
                                            std::to_string(format.num_classes) + " classes of " +
                                            format.name));
    }
    dataset->labels.push_back(label);
    const char* pixels = record + format.label_bytes;
    dataset->pixels.insert(dataset->pixels.end(), pixels, pixels + kImageBytes);
  }
}

Dataset read_cifar_files(const std::vector<std::string>& paths, const std::string& label_source,
                         const CifarFormat& format) {
  Dataset dataset;
  dataset.channels = kChannels;
  dataset.height = kSide;
  dataset.width = kSide;
  for (const std::string& path : paths) append_file(path, format, &dataset);
  dataset.num_examples = static_cast<int>(dataset.labels.size());
  for (int32_t label : dataset.labels) {
    dataset.num_classes_seen = std::max(dataset.num_classes_seen, label + 1);
  }
  dataset.label_source = "data.root: " + label_source;
  return dataset;
}

}  // namespace

Dataset read_cifar10_dataset(const std::string& root, bool train) {
  if (!train) {
    const std::string path = root + "/test_batch.bin";
    return read_cifar_files({path}, path, kCifar10);
  }
  std::vector<std::string> paths;
  for (int i = 1; i <= 5; ++i) paths.push_back(root + "/data_batch_" + std::to_string(i) + ".bin");
  return read_cifar_files(paths, root + "/data_batch_{1..5}.bin", kCifar10);
}

Dataset read_cifar100_dataset(const std::string& root, bool train) {
  std::string path = root + (train ? "/train.bin" : "/test.bin");
  return read_cifar_files({path}, path, kCifar100);
}

}  // namespace dgqa
