// Where the encoded images of a split are: numbered examples, each a JPEG or PNG file's bytes
// with a label. Image folders hold one file per example; tar shards hold many per file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dgqa {

class EncodedStore {
 public:
  virtual ~EncodedStore() = default;

  virtual int64_t size() const = 0;
  virtual int32_t label(int64_t example) const = 0;
  // The example as errors and warnings name it: a path, or a shard's path and the member.
  virtual std::string name(int64_t example) const = 0;
  // Replaces *bytes with the example's file. Safe from several threads at once. Throws
  // InputError naming the example when it cannot be read.
  virtual void read(int64_t example, std::vector<uint8_t>* bytes) const = 0;
  // "IMAGE_FOLDER /data/food/train: 75750 images of 101 classes", for reports.
  virtual std::string description() const = 0;
};

// Reads the whole file at `path` into *bytes; InputError naming the path when it cannot (the
// path is a folder, unreadable, missing, or changes size while read).
void read_whole_file(const std::string& path, std::vector<uint8_t>* bytes);

}  // namespace dgqa
