// NumPy's .npy format (version 1.0) for float32, float64 and int64 arrays: how `dgqa eval
// --logits-out` and `dgqa dump-data` hand arrays to Python (numpy.load reads them).
//   6 bytes "\x93NUMPY", 2 bytes version (1, 0), 2 bytes little-endian header length,
//   the header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, K), }
//   padded with spaces and ending in '\n', then the data in C order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dgqa {

// Writes data (the product of shape floats, C order) as a '<f4' array. The header is padded so
// that the data starts at a multiple of 64 bytes. Written atomically (AtomicFileWriter);
// std::runtime_error if the file cannot be written.
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);
// The same for int64 ('<i8'), as torch.tensor of labels saves them.
void write_npy_i64(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape);
// The same for float64 ('<f8'): values a float32 would round.
void write_npy_f64(const std::string& path, const double* data, const std::vector<int64_t>& shape);

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Reads a little-endian float32 array in C order, such as write_npy_f32 or numpy.save write.
// Anything else (another dtype, Fortran order, a truncated file) is an InputError naming the file.
NpyArray read_npy_f32(const std::string& path);

}  // namespace dgqa
