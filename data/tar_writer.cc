#include "data/tar_writer.h"

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace dgqa {
namespace {

constexpr size_t kBlock = 512;

void put_octal(char* field, size_t length, unsigned long long value) {
  std::snprintf(field, length, "%0*llo", static_cast<int>(length - 1), value);
}

}  // namespace

TarWriter::TarWriter(const std::string& path) : file_(path) {}

void TarWriter::add(const std::string& name, const void* data, size_t size) {
  char header[kBlock] = {};
  // ustar keeps names of up to 100 bytes, or a prefix of up to 155 bytes ending at a slash.
  std::string prefix, base = name;
  if (name.size() > 100) {
    const size_t slash = name.rfind('/', 155);
    if (slash == std::string::npos || name.size() - slash - 1 > 100) {
      throw std::invalid_argument("TarWriter: member name too long for ustar: " + name);
    }
    prefix = name.substr(0, slash);
    base = name.substr(slash + 1);
  }
  std::memcpy(header, base.data(), base.size());
  put_octal(header + 100, 8, 0644);
  put_octal(header + 108, 8, 0);
  put_octal(header + 116, 8, 0);
  put_octal(header + 124, 12, size);
  put_octal(header + 136, 12, 0);  // mtime 0: packing the same data gives the same bytes
  header[156] = '0';
  std::memcpy(header + 257, "ustar", 6);
  std::memcpy(header + 263, "00", 2);
  std::memcpy(header + 345, prefix.data(), prefix.size());
  std::memset(header + 148, ' ', 8);
  unsigned long long sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(header[i]);
  std::snprintf(header + 148, 8, "%06llo", sum);  // six digits, NUL, and the space kept
  file_.append(header, kBlock);
  file_.append(data, size);
  const std::vector<char> padding((kBlock - size % kBlock) % kBlock, 0);
  if (!padding.empty()) file_.append(padding.data(), padding.size());
}

void TarWriter::finish() {
  const std::vector<char> end(2 * kBlock, 0);
  file_.append(end.data(), end.size());
  file_.commit();
}

}  // namespace dgqa
