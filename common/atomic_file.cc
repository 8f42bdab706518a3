#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace dgqa {

AtomicFileWriter::AtomicFileWriter(const std::string& path)
    : path_(path), temp_path_(path + ".tmp." + std::to_string(getpid())) {
  fd_ = open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw std::runtime_error("cannot create " + temp_path_ + ": " + std::strerror(errno));
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {  // not committed: leave no partial file behind
    close(fd_);
    unlink(temp_path_.c_str());
  }
}

void AtomicFileWriter::append(const void* data, size_t size) {
  const char* next = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t written = ::write(fd_, next, size);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) {
      throw std::runtime_error("cannot write " + temp_path_ + ": " + std::strerror(errno));
    }
    next += written;
    size -= static_cast<size_t>(written);
  }
}

void AtomicFileWriter::commit() {
  if (fsync(fd_) != 0) {
    throw std::runtime_error("cannot fsync " + temp_path_ + ": " + std::strerror(errno));
  }
  const int fd = fd_;
  fd_ = -1;
  if (close(fd) != 0 || rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    unlink(temp_path_.c_str());
    throw std::runtime_error("cannot write " + path_ + ": " + reason);
  }
  // Make the rename itself durable. Best effort: some file systems refuse to fsync a directory.
  const size_t slash = path_.find_last_of('/');
  const std::string directory = slash == std::string::npos ? "." : path_.substr(0, slash + 1);
  const int directory_fd = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_fd >= 0) {
    fsync(directory_fd);
    close(directory_fd);
  }
}

}  // namespace dgqa
