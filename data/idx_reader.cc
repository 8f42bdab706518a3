#include "data/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "common/error.h"

namespace dgqa {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension
// Refuses absurd header values before allocating anything for them.
constexpr uint32_t kMaxExamples = 0x7fffffff;
constexpr uint32_t kMaxImageSide = 1 << 14;

std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", value);
  return text;
}

// One IDX file opened through zlib: gzread decompresses a gzip file (recognised by its magic
// bytes 1f 8b) and passes any other file through unchanged, so both read the same way.
class IdxFile {
 public:
  IdxFile(const std::string& path, const std::string& field)
      : path_(path), field_(field), file_(gzopen(path.c_str(), "rb"), gzclose) {
    if (file_ == nullptr) fail(std::string("cannot open (") + std::strerror(errno) + ")");
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(field_ + ": " + path_ + ": " + what);
  }

  // Appends exactly `count` bytes to *out; `what` names them in the error of a short file.
  // Reads in chunks so that a header promising more than the file holds fails as truncated
  // instead of allocating the promised size first.
  void read(uint64_t count, const std::string& what, std::vector<uint8_t>* out) {
    constexpr uint64_t kChunk = 1 << 20;
    uint64_t done = 0;
    while (done < count) {
      unsigned request = static_cast<unsigned>(std::min(kChunk, count - done));
      size_t old_size = out->size();
      out->resize(old_size + request);
      int got = gzread(file_.get(), out->data() + old_size, request);
      if (got < 0) {
        int code = 0;
        std::string message = gzerror(file_.get(), &code);
        // zlib starts its message with the path, which ours already names.
        if (message.rfind(path_ + ": ", 0) == 0) message.erase(0, path_.size() + 2);
        fail("read error (" + message + ")");
      }
      out->resize(old_size + static_cast<size_t>(got));
      done += static_cast<uint64_t>(got);
      if (static_cast<unsigned>(got) < request) {
        fail("truncated: the file is too short for " + what + " (" + std::to_string(count) +
             " bytes)");
      }
    }
  }

  // The magic number and dimension sizes at the start of the file (big-endian uint32s).
  std::vector<uint32_t> read_header(uint32_t expected_magic, int num_dims, const char* kind) {
    std::vector<uint8_t> bytes;
    read(4u * (1 + num_dims), "the IDX header", &bytes);
    std::vector<uint32_t> words;
    for (size_t i = 0; i < bytes.size(); i += 4) {
      words.push_back(uint32_t{bytes[i]} << 24 | uint32_t{bytes[i + 1]} << 16 |
                      uint32_t{bytes[i + 2]} << 8 | uint32_t{bytes[i + 3]});
    }
    if (words[0] != expected_magic) {
      fail("wrong IDX magic " + hex32(words[0]) + " (expected " + hex32(expected_magic) + " for " +
           kind + ")");
    }
    words.erase(words.begin());
    return words;
  }

 private:
  std::string path_;
  std::string field_;
  std::unique_ptr<gzFile_s, decltype(&gzclose)> file_;
};

void read_images(const std::string& path, const std::string& field, Dataset* dataset) {
  IdxFile file(path, field);
  std::vector<uint32_t> dims = file.read_header(kImagesMagic, 3, "images");
  uint32_t count = dims[0], rows = dims[1], cols = dims[2];
  if (count > kMaxExamples) file.fail("implausible image count " + std::to_string(count));
  if (rows == 0 || cols == 0 || rows > kMaxImageSide || cols > kMaxImageSide) {
    file.fail("implausible image size " + std::to_string(rows) + "x" + std::to_string(cols));
  }
  dataset->num_examples = static_cast<int>(count);
  dataset->channels = 1;
  dataset->height = static_cast<int>(rows);
  dataset->width = static_cast<int>(cols);
  uint64_t total = uint64_t{count} * rows * cols;
  file.read(
      total,
      std::to_string(count) + " images of " + std::to_string(rows) + "x" + std::to_string(cols),
      &dataset->pixels);
}

void read_labels(const std::string& path, const std::string& field, Dataset* dataset) {
  IdxFile file(path, field);
  uint32_t count = file.read_header(kLabelsMagic, 1, "labels")[0];
  if (count > kMaxExamples) file.fail("implausible label count " + std::to_string(count));
  std::vector<uint8_t> bytes;
  file.read(count, std::to_string(count) + " labels", &bytes);
  dataset->labels.assign(bytes.begin(), bytes.end());
  dataset->num_classes_seen = bytes.empty() ? 0 : *std::max_element(bytes.begin(), bytes.end()) + 1;
  dataset->label_source = field + ": " + path;
}

}  // namespace

Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         const std::string& images_field, const std::string& labels_field) {
  Dataset dataset;
  read_images(images_path, images_field, &dataset);
  read_labels(labels_path, labels_field, &dataset);
  if (static_cast<int64_t>(dataset.labels.size()) != dataset.num_examples) {
    throw InputError(labels_field + ": " + labels_path + ": holds " +
                     std::to_string(dataset.labels.size()) + " labels but " + images_field + ": " +
                     images_path + " holds " + std::to_string(dataset.num_examples) + " images");
  }
  return dataset;
}

}  // namespace dgqa
