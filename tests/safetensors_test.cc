// Tests of the safetensors reader and writer (io/safetensors.h), including a check by an
// independent reader written in Python.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

// A file built byte by byte: the 8-byte little-endian length, the header text, the buffer.
std::string raw_file(const std::string& header, const std::string& buffer) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(header.size() >> (8 * i));
  return bytes + header + buffer;
}

// Expects reading `path` to fail with an InputError that names the file and says `detail`.
void expect_read_error(const std::string& path, const std::string& detail) {
  try {
    SafetensorsFile::read(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const InputError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(detail), std::string::npos) << message;
  }
}

TEST(SafetensorsTest, RoundTripKeepsNamesShapesValuesAndMetadata) {
  const std::string path = tests::make_temp_dir("safetensors") + "/model.safetensors";
  const std::vector<float> weight = tests::random_vector(12, 7);
  const std::vector<int64_t> allocation = {3, 0, -(int64_t{1} << 40)};
  SafetensorsWriter writer;
  writer.add_f32("head.weight", {3, 4}, weight.data());
  writer.add_i64("blocks.0.attn.allocation", {3}, allocation.data());
  writer.set_metadata("format", "pt");
  writer.write(path);

  const SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_EQ(file.path(), path);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"blocks.0.attn.allocation", "head.weight"}));
  EXPECT_TRUE(file.has("head.weight"));
  EXPECT_FALSE(file.has("head.bias"));
  EXPECT_EQ(file.get("head.weight").dtype, "F32");
  EXPECT_EQ(file.get("head.weight").shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(file.as_f32("head.weight"), weight);
  EXPECT_EQ(file.get("blocks.0.attn.allocation").dtype, "I64");
  EXPECT_EQ(file.as_i64("blocks.0.attn.allocation"), allocation);
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST(SafetensorsTest, ScalarAndEmptyTensorsRoundTrip) {
  const std::string path = tests::make_temp_dir("safetensors") + "/odd.safetensors";
  const float scale = 0.125f;
  SafetensorsWriter writer;
  writer.add_f32("scale", {}, &scale);
  writer.add_f32("empty", {0, 3}, nullptr);
  writer.write(path);

  const SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_TRUE(file.get("scale").shape.empty());
  EXPECT_EQ(file.as_f32("scale"), std::vector<float>{scale});
  EXPECT_EQ(file.get("empty").shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(file.as_f32("empty").empty());
  EXPECT_TRUE(file.metadata().empty());
}

TEST(SafetensorsTest, BytesDependOnlyOnContentAndHeaderIsPaddedToEightBytes) {
  const std::string dir = tests::make_temp_dir("safetensors");
  const std::vector<float> a = {1, 2, 3}, b = {4, 5};
  SafetensorsWriter forward, backward;
  forward.add_f32("a", {3}, a.data());
  forward.add_f32("b", {2}, b.data());
  backward.add_f32("b", {2}, b.data());
  backward.add_f32("a", {3}, a.data());
  forward.write(dir + "/forward.safetensors");
  backward.write(dir + "/backward.safetensors");

  const std::string bytes = tests::read_file(dir + "/forward.safetensors");
  EXPECT_EQ(bytes, tests::read_file(dir + "/backward.safetensors"));
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(header_size % 8, 0u);
  const std::string header = bytes.substr(8, header_size);
  EXPECT_EQ(header.substr(0, header.find_last_not_of(' ') + 1),
            R"({"a":{"data_offsets":[0,12],"dtype":"F32","shape":[3]},)"
            R"("b":{"data_offsets":[12,20],"dtype":"F32","shape":[2]}})");
  EXPECT_EQ(bytes.size(), 8 + header_size + 20);
}

TEST(SafetensorsTest, WriteReplacesTheFileAndLeavesNoTemporary) {
  const std::string dir = tests::make_temp_dir("safetensors");
  const std::string path = dir + "/model.safetensors";
  tests::write_file(path, "old contents");
  const float value = 2.5f;
  SafetensorsWriter writer;
  writer.add_f32("x", {1}, &value);
  writer.write(path);

  EXPECT_EQ(SafetensorsFile::read(path).as_f32("x"), std::vector<float>{value});
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename(), "model.safetensors");
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(SafetensorsTest, WriteIntoAMissingDirectoryFailsNamingThePath) {
  const std::string path = tests::make_temp_dir("safetensors") + "/no/such/dir/x.safetensors";
  try {
    SafetensorsWriter().write(path);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
  }
}

TEST(SafetensorsTest, AddingANameTwiceIsRejected) {
  const float value = 1.f;
  SafetensorsWriter writer;
  writer.add_f32("x", {1}, &value);
  EXPECT_THROW(writer.add_f32("x", {1}, &value), std::invalid_argument);
}

TEST(SafetensorsTest, AsF32ConvertsHalfAndBfloat16) {
  const std::string path = tests::make_temp_dir("safetensors") + "/half.safetensors";
  // F16: 1, -2, 65504 (largest finite), 2^-24 (smallest subnormal); BF16: 1, -0.5.
  const std::string buffer(
      "\x00\x3c\x00\xc0\xff\x7b\x01\x00"
      "\x80\x3f\x00\xbf",
      12);
  tests::write_file(path, raw_file(R"({"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},)"
                                   R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}})",
                                   buffer));
  const SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_EQ(file.as_f32("h"), (std::vector<float>{1.f, -2.f, 65504.f, 1.f / 16777216.f}));
  EXPECT_EQ(file.as_f32("b"), (std::vector<float>{1.f, -0.5f}));
}

TEST(SafetensorsTest, WrongDtypeOrMissingNameIsAnInputErrorNamingTheFile) {
  const std::string path = tests::make_temp_dir("safetensors") + "/model.safetensors";
  const float value = 1.f;
  const int64_t count = 1;
  SafetensorsWriter writer;
  writer.add_f32("f", {1}, &value);
  writer.add_i64("i", {1}, &count);
  writer.write(path);
  const SafetensorsFile file = SafetensorsFile::read(path);
  for (const auto& call : std::vector<std::function<void()>>{
           [&] { file.as_f32("i"); }, [&] { file.as_i64("f"); }, [&] { file.get("missing"); }}) {
    try {
      call();
      ADD_FAILURE() << "no error";
    } catch (const InputError& error) {
      EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
    }
  }
}

TEST(SafetensorsTest, MalformedFilesAreInputErrorsNamingTheFile) {
  const std::string dir = tests::make_temp_dir("safetensors");
  expect_read_error(dir + "/absent.safetensors", "cannot open");
  expect_read_error(dir, "is a directory");

  struct Case {
    std::string label, bytes, detail;
  };
  const std::string four_bytes(4, '\0'), eight_bytes(8, '\0');
  auto entry = [](const std::string& fields) { return R"({"t":{)" + fields + "}}"; };
  const std::vector<Case> cases = {
      {"short", "abc", "fewer than the 8"},
      {"long_header", raw_file("{}", "").replace(0, 1, "\x64"), "exceeds"},
      {"bad_json", raw_file("{not json", ""), "not valid JSON"},
      {"not_object", raw_file("[1, 2]", ""), "not a JSON object"},
      {"unknown_dtype",
       raw_file(entry(R"("dtype":"F31","shape":[1],"data_offsets":[0,4])"), four_bytes),
       "unknown dtype 'F31'"},
      {"missing_field", raw_file(entry(R"("dtype":"F32","shape":[1])"), four_bytes), "lacks"},
      {"negative_dim",
       raw_file(entry(R"("dtype":"F32","shape":[-1],"data_offsets":[0,4])"), four_bytes),
       "non-negative"},
      {"end_past_buffer",
       raw_file(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0,8])"), four_bytes),
       "out of range"},
      {"begin_after_end",
       raw_file(entry(R"("dtype":"F32","shape":[1],"data_offsets":[4,0])"), four_bytes),
       "out of range"},
      {"size_mismatch",
       raw_file(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0,4])"), eight_bytes),
       "needs 8"},
      {"shape_overflow",
       raw_file(entry(R"("dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4])"),
                four_bytes),
       "more than 2^64"},
      {"bad_metadata", raw_file(R"({"__metadata__":{"step":3}})", ""), "__metadata__"},
      // Named by its type: printing it would recurse 200000 deep.
      {"deeply_nested_dim",
       raw_file(entry(R"("dtype":"F32","shape":[)" + std::string(200000, '[') +
                      std::string(200000, ']') + R"(],"data_offsets":[0,4])"),
                four_bytes),
       "a shape dimension must be a non-negative integer, got a JSON array"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    const std::string path = dir + "/" + c.label + ".safetensors";
    tests::write_file(path, c.bytes);
    expect_read_error(path, c.detail);
  }
}

// As the reference implementation reads them: the tensors, ordered by offset, must cover the
// buffer exactly. Each case is refused naming the file and the tensor at fault.
TEST(SafetensorsTest, TensorsMustCoverTheBufferInOrderWithoutGapOrOverlap) {
  const std::string dir = tests::make_temp_dir("safetensors");
  const std::string eight_bytes(8, '\0'), twelve_bytes(12, '\0');
  auto two = [](const std::string& a_offsets, const std::string& b_offsets) {
    return R"({"a":{"dtype":"F32","shape":[1],"data_offsets":)" + a_offsets +
           R"(},"b":{"dtype":"F32","shape":[1],"data_offsets":)" + b_offsets + "}}";
  };
  struct Case {
    std::string label, bytes, detail;
  };
  const std::vector<Case> cases = {
      {"overlap", raw_file(two("[0,4]", "[0,4]"), eight_bytes), "tensor 'b' starts at byte 0"},
      {"gap_between", raw_file(two("[0,4]", "[8,12]"), twelve_bytes),
       "tensor 'b' starts at byte 8"},
      {"gap_before", raw_file(two("[4,8]", "[8,12]"), twelve_bytes), "tensor 'a' starts at byte 4"},
      {"trailing", raw_file(two("[0,4]", "[4,8]"), twelve_bytes),
       "4 bytes after the end of the last tensor 'b'"},
      {"trailing_without_tensors", raw_file("{}", eight_bytes), "8 bytes after the end"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    const std::string path = dir + "/" + c.label + ".safetensors";
    tests::write_file(path, c.bytes);
    expect_read_error(path, c.detail);
  }
  // Header order does not matter, offset order does: b before a is a valid file.
  const float values[2] = {1.5f, -3.f};
  const std::string path = dir + "/reordered.safetensors";
  tests::write_file(
      path, raw_file(two("[4,8]", "[0,4]"), std::string(reinterpret_cast<const char*>(values), 8)));
  const SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_EQ(file.as_f32("a"), std::vector<float>{-3.f});
  EXPECT_EQ(file.as_f32("b"), std::vector<float>{1.5f});
}

// A header length one byte short of the real one, whose JSON still parses (the writer's space
// padding): every tensor would be read one byte early. The byte left over after the last tensor
// gives it away.
TEST(SafetensorsTest, AHeaderLengthOneByteShortIsRefused) {
  const std::string dir = tests::make_temp_dir("safetensors");
  const std::string path = dir + "/model.safetensors";
  const std::vector<float> weight = {1.f, 2.f, 3.f};
  SafetensorsWriter writer;
  writer.add_f32("head.weight", {3}, weight.data());
  writer.write(path);
  std::string bytes = tests::read_file(path);
  ASSERT_EQ(bytes[8 + static_cast<uint8_t>(bytes[0]) - 1], ' ') << "the header has no padding";
  bytes[0] = static_cast<char>(static_cast<uint8_t>(bytes[0]) - 1);
  const std::string shifted = dir + "/shifted.safetensors";
  tests::write_file(shifted, bytes);
  expect_read_error(shifted, "1 bytes after the end of the last tensor 'head.weight'");
}

// Reads the file with its own parser (the `safetensors` package is not needed) and checks the
// layout the format prescribes and the values the test wrote.
const char kPythonReader[] = R"(
import json, struct, sys
import numpy as np

data = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", data[:8])
assert n % 8 == 0, n
text = data[8:8 + n].decode("utf-8")
assert text.rstrip(" ").endswith("}"), "header padding must be trailing spaces"
header = json.loads(text)
assert header.pop("__metadata__") == {"format": "pt", "producer": "dgqa"}
buffer = data[8 + n:]
numpy_types = {"F32": "<f4", "I64": "<i8"}
arrays, end = {}, 0
for name in sorted(header):
    info = header[name]
    begin, stop = info["data_offsets"]
    assert begin == end, "tensors must be contiguous in name order"
    end = stop
    array = np.frombuffer(buffer[begin:stop], dtype=numpy_types[info["dtype"]])
    arrays[name] = array.reshape(info["shape"])
assert end == len(buffer)

def same(name, expected):
    got = arrays[name]
    assert got.dtype == expected.dtype and got.shape == expected.shape, (name, got)
    assert np.array_equal(got, expected), (name, got, expected)

same("blocks.0.attn.q.weight", np.arange(12, dtype=np.float32).reshape(3, 4) * np.float32(0.25) - 1)
same("blocks.0.attn.allocation", np.array([5, 0, -2**40], dtype=np.int64))
same("cls_token", np.full((1, 1, 5), -0.5, dtype=np.float32))
same("scale", np.array(0.125, dtype=np.float32))
same("empty", np.zeros((0, 3), dtype=np.float32))
print("OK")
)";

TEST(SafetensorsTest, AnIndependentPythonReaderAgrees) {
  if (!tests::have_python_with_numpy()) GTEST_SKIP() << "needs /usr/bin/python3 with numpy";
  const std::string dir = tests::make_temp_dir("safetensors");
  std::vector<float> weight(12), cls(5, -0.5f);
  for (int i = 0; i < 12; ++i) weight[i] = i * 0.25f - 1.f;
  const std::vector<int64_t> allocation = {5, 0, -(int64_t{1} << 40)};
  const float scale = 0.125f;
  SafetensorsWriter writer;
  writer.add_f32("cls_token", {1, 1, 5}, cls.data());
  writer.add_f32("blocks.0.attn.q.weight", {3, 4}, weight.data());
  writer.add_i64("blocks.0.attn.allocation", {3}, allocation.data());
  writer.add_f32("scale", {}, &scale);
  writer.add_f32("empty", {0, 3}, nullptr);
  writer.set_metadata("producer", "dgqa");
  writer.set_metadata("format", "pt");
  writer.write(dir + "/model.safetensors");
  tests::write_file(dir + "/reader.py", kPythonReader);

  std::string output;
  const int status = tests::run_command(
      "/usr/bin/python3 " + dir + "/reader.py " + dir + "/model.safetensors", &output);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "OK\n");
}

}  // namespace
}  // namespace dgqa
