#include "io/npy.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace dgqa {
namespace {

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw InputError("npy file " + path + ": " + what);
}

// The text after "'key':" in a header dict, leading spaces removed.
std::string dict_value(const std::string& header, const std::string& key, const std::string& path) {
  const std::string pattern = "'" + key + "':";
  const size_t found = header.find(pattern);
  if (found == std::string::npos) fail(path, "the header has no '" + key + "'");
  const size_t start = header.find_first_not_of(' ', found + pattern.size());
  return start == std::string::npos ? "" : header.substr(start);
}

// "(2, 3), ..." -> {2, 3}; "()" -> {} (a scalar).
std::vector<int64_t> parse_shape(const std::string& text, const std::string& path) {
  const size_t close = text.find(')');
  if (text.empty() || text[0] != '(' || close == std::string::npos) {
    fail(path, "the header's shape is not a tuple");
  }
  std::vector<int64_t> shape;
  std::istringstream dims(text.substr(1, close - 1));
  std::string dim;
  while (std::getline(dims, dim, ',')) {
    if (dim.find_first_not_of(' ') == std::string::npos) continue;  // after "(5,"
    try {
      shape.push_back(std::stoll(dim));
    } catch (const std::exception&) {
      fail(path, "bad dimension '" + dim + "' in the header's shape");
    }
    if (shape.back() < 0) fail(path, "negative dimension in the header's shape");
  }
  return shape;
}

}  // namespace

namespace {

// Writes a C-order array of `shape` whose elements are `element_bytes` each, of numpy type
// `descr` ('<f4', '<i8').
void write_npy(const std::string& path, const char* descr, const void* data, size_t element_bytes,
               const std::vector<int64_t>& shape) {
  std::string shape_text = "(";
  size_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    shape_text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
    count *= static_cast<size_t>(shape[i]);
  }
  shape_text += shape.size() == 1 ? ",)" : ")";  // Python's one-element tuple
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': " + shape_text + ", }";
  // Magic, version and the length field take 10 bytes; the header ends in '\n'.
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  const uint8_t version_and_length[4] = {1, 0, static_cast<uint8_t>(header.size()),
                                         static_cast<uint8_t>(header.size() >> 8)};

  AtomicFileWriter out(path);
  out.append(kMagic, kMagicSize);
  out.append(version_and_length, sizeof(version_and_length));
  out.append(header.data(), header.size());
  if (count > 0) out.append(data, count * element_bytes);  // data may be null when empty
  out.commit();
}

}  // namespace

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  write_npy(path, "<f4", data, sizeof(float), shape);
}

void write_npy_i64(const std::string& path, const int64_t* data,
                   const std::vector<int64_t>& shape) {
  write_npy(path, "<i8", data, sizeof(int64_t), shape);
}

void write_npy_f64(const std::string& path, const double* data, const std::vector<int64_t>& shape) {
  write_npy(path, "<f8", data, sizeof(double), shape);
}

NpyArray read_npy_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  if (std::filesystem::is_directory(path)) fail(path, "is a directory");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  // Version 1 has a 2-byte header length, version 2 (for very long headers) a 4-byte one.
  if (bytes.size() < 10 || bytes.compare(0, kMagicSize, kMagic) != 0) {
    fail(path, "not an npy file (no \\x93NUMPY magic)");
  }
  const int major_version = static_cast<uint8_t>(bytes[6]);
  if (major_version != 1 && major_version != 2) {
    fail(path, "unsupported npy version " + std::to_string(major_version));
  }
  const size_t length_size = major_version == 1 ? 2 : 4;
  size_t header_size = 0;
  for (size_t i = length_size; i-- > 0;) {
    header_size = (header_size << 8) | static_cast<uint8_t>(bytes[8 + i]);
  }
  const size_t data_start = 8 + length_size + header_size;
  if (bytes.size() < data_start) fail(path, "the file ends inside the header");
  const std::string header = bytes.substr(8 + length_size, header_size);

  if (dict_value(header, "descr", path).compare(0, 5, "'<f4'") != 0) {
    fail(path, "dtype is not little-endian float32 ('<f4')");
  }
  if (dict_value(header, "fortran_order", path).compare(0, 5, "False") != 0) {
    fail(path, "Fortran order is not supported");
  }
  NpyArray array;
  array.shape = parse_shape(dict_value(header, "shape", path), path);
  size_t count = 1;
  for (int64_t dim : array.shape) count *= static_cast<size_t>(dim);
  if (bytes.size() - data_start != count * sizeof(float)) {
    fail(path, "holds " + std::to_string(bytes.size() - data_start) +
                   " data bytes, its shape needs " + std::to_string(count * sizeof(float)));
  }
  array.data.resize(count);
  if (count > 0) std::memcpy(array.data.data(), bytes.data() + data_start, count * sizeof(float));
  return array;
}

}  // namespace dgqa
