// Fuzz target: the safetensors reader (io/safetensors.h).
//
// Input: a whole safetensors file (8-byte header length, JSON header, byte buffer), written
// to a scratch file and read with SafetensorsFile::read.
// Asserts: the read ends with the file's tensors or an InputError naming the file; every
// tensor it returns holds exactly the bytes its dtype and shape need; as_f32 and as_i64 give
// one value per element or an InputError naming the file (a dtype they do not convert).
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

namespace dgqa::fuzz {
namespace {

uint64_t element_count(const TensorData& tensor) {
  uint64_t count = 1;
  for (int64_t extent : tensor.shape) count *= static_cast<uint64_t>(extent);
  return count;
}

void check_tensors(const SafetensorsFile& file) {
  for (const std::string& name : file.names()) {
    const TensorData& tensor = file.get(name);
    const uint64_t count = element_count(tensor);
    if (tensor.bytes.size() != count * safetensors_dtype_size(tensor.dtype)) {
      finding("tensor '" + name + "' holds " + std::to_string(tensor.bytes.size()) + " bytes for " +
              std::to_string(count) + " elements of " + tensor.dtype);
    }
    reads_or_refuses(file.path(), [&] {
      if (file.as_f32(name).size() != count) finding("as_f32 of '" + name + "': wrong count");
    });
    reads_or_refuses(file.path(), [&] {
      if (file.as_i64(name).size() != count) finding("as_i64 of '" + name + "': wrong count");
    });
  }
}

}  // namespace
}  // namespace dgqa::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dgqa::fuzz;
  const std::string path = write_scratch_file("input.safetensors", data, size);
  reads_or_refuses(path, [&] { check_tensors(dgqa::SafetensorsFile::read(path)); });
  return 0;
}
