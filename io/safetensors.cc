#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>

#include "common/atomic_file.h"
#include "common/error.h"

// Tensor bytes are copied between memory and file as they are, which is right only on a
// little-endian host (x86-64, AArch64), the byte order of the format.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes little-endian");

namespace dgqa {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw InputError("safetensors file " + path + ": " + what);
}

// a * b, or false if it does not fit in 64 bits.
bool checked_multiply(uint64_t a, uint64_t b, uint64_t* product) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  *product = a * b;
  return true;
}

// A non-negative JSON integer that fits in int64_t (shape dims and offsets), else fail(). The
// message shows a number or string as it is, an array or object by its type only (printing
// one nested a million deep would overflow the stack).
uint64_t read_count(const json& value, const std::string& path, const std::string& what) {
  if (!value.is_number_unsigned() ||
      value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    const std::string got =
        value.is_structured() ? std::string("a JSON ") + value.type_name() : value.dump();
    fail(path, what + " must be a non-negative integer, got " + got);
  }
  return value.get<uint64_t>();
}

std::string shape_string(const std::vector<int64_t>& shape) {
  return json(shape).dump();
}

// Checks one header entry against a buffer of buffer_size bytes; returns the tensor without its
// bytes and its offset in the buffer.
TensorData parse_entry(const std::string& name, const json& entry, uint64_t buffer_size,
                       const std::string& path, uint64_t* begin) {
  const std::string where = "tensor '" + name + "'";
  if (!entry.is_object()) fail(path, where + " is not a JSON object");
  if (!entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets")) {
    fail(path, where + " lacks one of dtype, shape, data_offsets");
  }
  TensorData tensor;
  if (!entry["dtype"].is_string()) fail(path, where + ": dtype is not a string");
  tensor.dtype = entry["dtype"].get<std::string>();
  const uint64_t element_size = safetensors_dtype_size(tensor.dtype);
  if (element_size == 0) fail(path, where + ": unknown dtype '" + tensor.dtype + "'");

  if (!entry["shape"].is_array()) fail(path, where + ": shape is not an array");
  bool fits = true;
  uint64_t expected_bytes = element_size;
  for (const json& dim : entry["shape"]) {
    uint64_t size = read_count(dim, path, where + ": a shape dimension");
    tensor.shape.push_back(static_cast<int64_t>(size));
    fits = checked_multiply(expected_bytes, size, &expected_bytes) && fits;
  }
  // A zero dimension makes the tensor empty even when the other dimensions overflow.
  if (expected_bytes == 0) fits = true;

  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    fail(path, where + ": data_offsets must be [begin, end]");
  }
  *begin = read_count(offsets[0], path, where + ": data_offsets begin");
  const uint64_t end = read_count(offsets[1], path, where + ": data_offsets end");
  if (*begin > end || end > buffer_size) {
    fail(path, where + ": data_offsets " + offsets.dump() + " out of range for a buffer of " +
                   std::to_string(buffer_size) + " bytes");
  }
  if (!fits || end - *begin != expected_bytes) {
    fail(path, where + ": data_offsets " + offsets.dump() + " hold " +
                   std::to_string(end - *begin) + " bytes, but dtype " + tensor.dtype +
                   " with shape " + shape_string(tensor.shape) + " needs " +
                   (fits ? std::to_string(expected_bytes) : "more than 2^64"));
  }
  tensor.bytes.resize(end - *begin);
  return tensor;
}

// Where a tensor's bytes lie in the buffer.
struct Extent {
  uint64_t begin, end;
  std::string name;
  bool operator<(const Extent& other) const {
    return std::tie(begin, end, name) < std::tie(other.begin, other.end, other.name);
  }
};

// As the reference implementation requires: the tensors, ordered by their offsets, cover the
// buffer exactly, one after the other, with no gap, no overlap and nothing after the last.
void check_extents(std::vector<Extent> extents, uint64_t buffer_size, const std::string& path) {
  std::sort(extents.begin(), extents.end());
  uint64_t next = 0;
  for (const Extent& extent : extents) {
    if (extent.begin != next) {
      fail(path,
           "tensor '" + extent.name + "' starts at byte " + std::to_string(extent.begin) +
               " of the buffer, expected " + std::to_string(next) + " (" +
               (extent.begin < next ? "it overlaps the tensor before it" : "a gap before it") +
               "; tensors must cover the buffer one after the other)");
    }
    next = extent.end;
  }
  if (next != buffer_size) {
    fail(path, std::to_string(buffer_size - next) + " bytes after the end of " +
                   (extents.empty() ? "the header (no tensors)"
                                    : "the last tensor '" + extents.back().name + "'") +
                   ": the buffer has " + std::to_string(buffer_size) +
                   " bytes, the tensors cover " + std::to_string(next) +
                   " (a wrong header length?)");
  }
}

std::map<std::string, std::string> parse_metadata(const json& metadata, const std::string& path) {
  if (!metadata.is_object()) fail(path, "__metadata__ is not a JSON object");
  std::map<std::string, std::string> result;
  for (const auto& [key, value] : metadata.items()) {
    if (!value.is_string()) fail(path, "__metadata__ value of '" + key + "' is not a string");
    result[key] = value.get<std::string>();
  }
  return result;
}

// Reads the length field and the JSON header that follows it; the header must be an object.
json read_header(std::ifstream& in, uint64_t file_size, const std::string& path,
                 uint64_t* header_size) {
  if (file_size < 8) {
    fail(path, "the file has " + std::to_string(file_size) +
                   " bytes, fewer than the 8 of the header length");
  }
  uint8_t length_bytes[8];
  in.seekg(0);
  in.read(reinterpret_cast<char*>(length_bytes), sizeof(length_bytes));
  *header_size = 0;
  for (int i = 7; i >= 0; --i) *header_size = (*header_size << 8) | length_bytes[i];
  if (*header_size > file_size - 8) {
    fail(path, "header length " + std::to_string(*header_size) + " exceeds the " +
                   std::to_string(file_size - 8) + " bytes after the length field");
  }
  std::string header_text(*header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(*header_size));
  if (!in) fail(path, "cannot read the header");
  json header;
  try {
    header = json::parse(header_text);
  } catch (const json::exception& error) {
    fail(path, std::string("the header is not valid JSON: ") + error.what());
  }
  if (!header.is_object()) fail(path, "the header is not a JSON object");
  return header;
}

// memcpy of the bytes into `to`; nothing for no bytes (memcpy's pointers may not be null, and
// an empty vector's data() may be).
void copy_bytes(void* to, const std::vector<uint8_t>& bytes) {
  if (!bytes.empty()) std::memcpy(to, bytes.data(), bytes.size());
}

// IEEE half precision to float: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
float half_to_float(uint16_t half) {
  const int exponent = (half >> 10) & 0x1f;
  const int mantissa = half & 0x3ff;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero or subnormal
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? std::numeric_limits<float>::infinity()
                              : std::numeric_limits<float>::quiet_NaN();
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa + 1024), exponent - 25);
  }
  return (half & 0x8000) ? -magnitude : magnitude;
}

// bfloat16 is the upper half of a float's bits.
float bfloat16_to_float(uint16_t bits) {
  const uint32_t word = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &word, sizeof(value));
  return value;
}

std::vector<float> halves_to_floats(const std::vector<uint8_t>& bytes, float (*convert)(uint16_t)) {
  std::vector<float> values(bytes.size() / 2);
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t bits;
    std::memcpy(&bits, bytes.data() + 2 * i, sizeof(bits));
    values[i] = convert(bits);
  }
  return values;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1},
      {"U16", 2},  {"I16", 2}, {"F16", 2}, {"BF16", 2},    {"U32", 4},
      {"I32", 4},  {"F32", 4}, {"U64", 8}, {"I64", 8},     {"F64", 8}};
  auto found = kSizes.find(dtype);
  return found == kSizes.end() ? 0 : found->second;
}

SafetensorsFile SafetensorsFile::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  if (std::filesystem::is_directory(path)) fail(path, "is a directory");
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  uint64_t header_size = 0;
  const json header = read_header(in, file_size, path, &header_size);

  SafetensorsFile file;
  file.path_ = path;
  const uint64_t buffer_start = 8 + header_size;
  const uint64_t buffer_size = file_size - buffer_start;
  std::vector<Extent> extents;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      file.metadata_ = parse_metadata(entry, path);
      continue;
    }
    uint64_t begin = 0;
    TensorData tensor = parse_entry(name, entry, buffer_size, path, &begin);
    extents.push_back({begin, begin + tensor.bytes.size(), name});
    file.tensors_.emplace(name, std::move(tensor));
  }
  check_extents(extents, buffer_size, path);
  for (const Extent& extent : extents) {
    std::vector<uint8_t>& bytes = file.tensors_.at(extent.name).bytes;
    in.seekg(static_cast<std::streamoff>(buffer_start + extent.begin));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!in) fail(path, "cannot read the data of tensor '" + extent.name + "'");
  }
  return file;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> result;
  for (const auto& entry : tensors_) result.push_back(entry.first);
  return result;
}

const TensorData& SafetensorsFile::get(const std::string& name) const {
  auto found = tensors_.find(name);
  if (found == tensors_.end()) fail(path_, "no tensor named '" + name + "'");
  return found->second;
}

std::vector<float> SafetensorsFile::as_f32(const std::string& name) const {
  const TensorData& tensor = get(name);
  if (tensor.dtype == "F16") return halves_to_floats(tensor.bytes, half_to_float);
  if (tensor.dtype == "BF16") return halves_to_floats(tensor.bytes, bfloat16_to_float);
  if (tensor.dtype != "F32") {
    fail(path_, "tensor '" + name + "' has dtype " + tensor.dtype + ", expected F32, F16 or BF16");
  }
  std::vector<float> values(tensor.bytes.size() / sizeof(float));
  copy_bytes(values.data(), tensor.bytes);
  return values;
}

std::vector<int64_t> SafetensorsFile::as_i64(const std::string& name) const {
  const TensorData& tensor = get(name);
  if (tensor.dtype != "I64") {
    fail(path_, "tensor '" + name + "' has dtype " + tensor.dtype + ", expected I64");
  }
  std::vector<int64_t> values(tensor.bytes.size() / sizeof(int64_t));
  copy_bytes(values.data(), tensor.bytes);
  return values;
}

void SafetensorsWriter::add(const std::string& name, const std::string& dtype,
                            const std::vector<int64_t>& shape, const void* data) {
  if (name.empty() || name == "__metadata__") {
    throw std::invalid_argument("invalid safetensors tensor name '" + name + "'");
  }
  if (tensors_.count(name) != 0) {
    throw std::invalid_argument("safetensors tensor '" + name + "' added twice");
  }
  size_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) throw std::invalid_argument("negative dimension in shape of '" + name + "'");
    count *= static_cast<size_t>(dim);
  }
  TensorData tensor{dtype, shape, {}};
  const size_t size = count * safetensors_dtype_size(dtype);
  const auto* first = static_cast<const uint8_t*>(data);
  if (size > 0) tensor.bytes.assign(first, first + size);  // data may be null when empty
  tensors_.emplace(name, std::move(tensor));
}

void SafetensorsWriter::add_f32(const std::string& name, const std::vector<int64_t>& shape,
                                const float* data) {
  add(name, "F32", shape, data);
}

void SafetensorsWriter::add_i64(const std::string& name, const std::vector<int64_t>& shape,
                                const int64_t* data) {
  add(name, "I64", shape, data);
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafetensorsWriter::write(const std::string& path) const {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors_) {  // std::map: sorted by name
    header[name] = {{"dtype", tensor.dtype},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + tensor.bytes.size()}}};
    offset += tensor.bytes.size();
  }
  if (!metadata_.empty()) header["__metadata__"] = metadata_;

  // Spaces after the JSON keep the buffer 8-byte aligned, as the reference implementation does.
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  uint8_t length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<uint8_t>(header_text.size() >> (8 * i));

  AtomicFileWriter out(path);
  out.append(length_bytes, sizeof(length_bytes));
  out.append(header_text.data(), header_text.size());
  for (const auto& entry : tensors_)
    out.append(entry.second.bytes.data(), entry.second.bytes.size());
  out.commit();
}

}  // namespace dgqa
