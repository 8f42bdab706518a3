// Tests of the .npy writer and reader (io/npy.h), including numpy.load on our files.
#include "io/npy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

// 0.5 * i - 3 for i = 0, 1, ...: values a Python check can recompute exactly.
std::vector<float> ramp(size_t n) {
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = 0.5f * static_cast<float>(i) - 3.f;
  return values;
}

TEST(NpyTest, RoundTripOfSeveralShapes) {
  const std::string dir = tests::make_temp_dir("npy");
  const std::vector<std::vector<int64_t>> shapes = {{2, 3}, {7}, {}, {0, 4}, {2, 1, 3}};
  for (const auto& shape : shapes) {
    size_t count = 1;
    for (int64_t dim : shape) count *= static_cast<size_t>(dim);
    const std::vector<float> values = tests::random_vector(count, 3);
    write_npy_f32(dir + "/a.npy", values.data(), shape);
    const NpyArray array = read_npy_f32(dir + "/a.npy");
    EXPECT_EQ(array.shape, shape);
    EXPECT_EQ(array.data, values);
  }
}

TEST(NpyTest, HeaderIsVersionOneAndDataStartsAtAMultipleOf64) {
  const std::string dir = tests::make_temp_dir("npy");
  const std::vector<float> values = ramp(6);
  write_npy_f32(dir + "/a.npy", values.data(), {2, 3});
  const std::string bytes = tests::read_file(dir + "/a.npy");
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_size = static_cast<uint8_t>(bytes[8]) | static_cast<uint8_t>(bytes[9]) << 8;
  EXPECT_EQ((10 + header_size) % 64, 0u);
  const std::string header = bytes.substr(10, header_size);
  EXPECT_EQ(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0), 0u);
  EXPECT_EQ(header.back(), '\n');
  EXPECT_EQ(bytes.size(), 10 + header_size + 6 * sizeof(float));
}

TEST(NpyTest, WriteLeavesNoTemporary) {
  const std::string dir = tests::make_temp_dir("npy");
  const std::vector<float> values = ramp(4);
  write_npy_f32(dir + "/logits.npy", values.data(), {4});
  write_npy_f32(dir + "/logits.npy", values.data(), {2, 2});
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename(), "logits.npy");
    ++files;
  }
  EXPECT_EQ(files, 1);
  EXPECT_EQ(read_npy_f32(dir + "/logits.npy").shape, (std::vector<int64_t>{2, 2}));
}

TEST(NpyTest, UnreadableFilesAreInputErrorsNamingTheFile) {
  const std::string dir = tests::make_temp_dir("npy");
  const std::vector<float> values = ramp(6);
  write_npy_f32(dir + "/good.npy", values.data(), {2, 3});
  const std::string good = tests::read_file(dir + "/good.npy");
  std::string double_type = good, fortran = good;
  double_type.replace(double_type.find("<f4"), 3, "<f8");
  fortran.replace(fortran.find("False"), 5, "True ");

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not_npy", "hello world"},
      {"double", double_type},
      {"fortran", fortran},
      {"truncated", good.substr(0, good.size() - 1)},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    const std::string path = dir + "/" + name + ".npy";
    tests::write_file(path, bytes);
    try {
      read_npy_f32(path);
      ADD_FAILURE() << "no error";
    } catch (const InputError& error) {
      EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
    }
  }
  EXPECT_THROW(read_npy_f32(dir + "/absent.npy"), InputError);
  EXPECT_THROW(read_npy_f32(dir), InputError);
}

// numpy.load must read what we write; and we must read what numpy.save writes.
const char kNumpyCheck[] = R"(
import sys
import numpy as np

def same(path, expected):
    got = np.load(path)
    assert got.dtype == np.float32 and got.shape == expected.shape, (path, got.dtype, got.shape)
    assert np.array_equal(got, expected), (path, got)

ramp = lambda n: np.arange(n, dtype=np.float32) * np.float32(0.5) - np.float32(3)
same(sys.argv[1] + "/matrix.npy", ramp(6).reshape(2, 3))
same(sys.argv[1] + "/vector.npy", ramp(7))
same(sys.argv[1] + "/scalar.npy", ramp(1).reshape(()))
doubles = np.load(sys.argv[1] + "/doubles.npy")  # 1 + 2^-40: not a float32
assert doubles.dtype == np.float64 and doubles.shape == (2,), (doubles.dtype, doubles.shape)
assert list(doubles) == [1 + 2.0**-40, -0.1], list(doubles)
np.save(sys.argv[1] + "/from_numpy.npy", ramp(20).reshape(4, 5))
print("OK")
)";

TEST(NpyTest, NumpyReadsOurFilesAndWeReadNumpys) {
  if (!tests::have_python_with_numpy()) GTEST_SKIP() << "needs /usr/bin/python3 with numpy";
  const std::string dir = tests::make_temp_dir("npy");
  write_npy_f32(dir + "/matrix.npy", ramp(6).data(), {2, 3});
  write_npy_f32(dir + "/vector.npy", ramp(7).data(), {7});
  write_npy_f32(dir + "/scalar.npy", ramp(1).data(), {});
  const double doubles[] = {1 + std::ldexp(1.0, -40), -0.1};
  write_npy_f64(dir + "/doubles.npy", doubles, {2});
  tests::write_file(dir + "/check.py", kNumpyCheck);

  std::string output;
  EXPECT_EQ(tests::run_command("/usr/bin/python3 " + dir + "/check.py " + dir, &output), 0)
      << output;
  EXPECT_EQ(output, "OK\n");

  const NpyArray from_numpy = read_npy_f32(dir + "/from_numpy.npy");
  EXPECT_EQ(from_numpy.shape, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(from_numpy.data, ramp(20));
}

}  // namespace
}  // namespace dgqa
