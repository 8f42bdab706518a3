// Atomic file replacement, used for every file dgqa writes (weights, logits, checkpoints).
#pragma once

#include <cstddef>
#include <string>

namespace dgqa {

// Writes a file so that a reader sees either the previous file or the complete new one, even if
// the process dies midway: the bytes go to `<path>.tmp.<pid>`, which is fsync'd and then renamed
// over `path`. If commit() is not reached (an exception), the temporary file is removed.
// Errors are std::runtime_error naming the path.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void append(const void* data, size_t size);
  void commit();

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
};

}  // namespace dgqa
