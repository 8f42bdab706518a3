// Writes POSIX ustar archives, the container of tar shards (`dgqa pack` and the tests).
#pragma once

#include <cstddef>
#include <string>

#include "common/atomic_file.h"

namespace dgqa {

class TarWriter {
 public:
  // The archive appears at `path` on finish(), complete or not at all.
  explicit TarWriter(const std::string& path);

  // Adds a regular file. Names longer than ustar holds (100 bytes, or 155 + 100 split at a
  // slash) throw std::invalid_argument.
  void add(const std::string& name, const void* data, size_t size);

  // Writes the end-of-archive blocks and commits the file.
  void finish();

 private:
  AtomicFileWriter file_;
};

}  // namespace dgqa
