// The safetensors file format (https://github.com/huggingface/safetensors), which holds model
// weights and checkpoints (docs/design.md §4):
//   8 bytes      N, the header length, unsigned little-endian
//   N bytes      JSON: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
//                       ..., "__metadata__": {"key": "value", ...} (optional)}
//   the rest     the byte buffer; data_offsets are relative to its start
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dgqa {

// One tensor: its dtype as the format spells it ("F32", "I64", ...), its shape and its raw
// little-endian bytes.
struct TensorData {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Bytes per element of a safetensors dtype, 0 for a dtype the format does not define.
size_t safetensors_dtype_size(const std::string& dtype);

// A safetensors file read whole into memory. Every problem with the file (missing, truncated,
// malformed header, offsets that do not fit) is an InputError whose message names the file.
class SafetensorsFile {
 public:
  static SafetensorsFile read(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorData& get(const std::string& name) const;  // InputError if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor's values as floats: F32 as is; F16 and BF16 (as in some timm checkpoints)
  // converted. InputError for any other dtype.
  std::vector<float> as_f32(const std::string& name) const;
  // The tensor's values; InputError unless its dtype is I64.
  std::vector<int64_t> as_i64(const std::string& name) const;

 private:
  std::string path_;
  std::map<std::string, TensorData> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Collects tensors, then writes them as one safetensors file. The bytes depend only on the
// content, not on the order of the add calls: tensors are laid out in sorted name order.
class SafetensorsWriter {
 public:
  void add_f32(const std::string& name, const std::vector<int64_t>& shape, const float* data);
  void add_i64(const std::string& name, const std::vector<int64_t>& shape, const int64_t* data);
  void set_metadata(const std::string& key, const std::string& value);

  // Writes atomically (see AtomicFileWriter); std::runtime_error if the file cannot be written.
  void write(const std::string& path) const;

 private:
  void add(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
           const void* data);

  std::map<std::string, TensorData> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace dgqa
