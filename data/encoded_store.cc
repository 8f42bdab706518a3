#include "data/encoded_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace dgqa {

void read_whole_file(const std::string& path, std::vector<uint8_t>* bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    close(fd);
    throw InputError(path + ": not a regular file");
  }
  bytes->resize(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes->size()) {
    const ssize_t got = ::read(fd, bytes->data() + done, bytes->size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const int read_errno = errno;
      close(fd);
      errno = read_errno;
      throw InputError(got < 0 ? path + ": cannot read (" + std::strerror(errno) + ")"
                               : path + ": the file shrank while it was read");
    }
    done += static_cast<size_t>(got);
  }
  close(fd);
}

}  // namespace dgqa
