// Reading the binary versions of CIFAR-10 and CIFAR-100.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/cifar_reader.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::expect_contains;
using tests::input_error_of;

constexpr int kImageBytes = 3 * 32 * 32;

// A record's pixels: byte i of image `seed` is (seed + i) mod 256.
std::string image_bytes(int seed) {
  std::string bytes(kImageBytes, '\0');
  for (int i = 0; i < kImageBytes; ++i) bytes[i] = static_cast<char>((seed + i) % 256);
  return bytes;
}

class CifarReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { root_ = tests::make_temp_dir("dgqa_cifar_"); }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string path(const std::string& name) const { return root_ + "/" + name; }

  // CIFAR-10: training file b (1..5) holds 2 records, image seeds 10b and 10b + 1, labels
  // b and 9 - b; the test file holds 3 records with seeds 100, 101, 102 and labels 0, 1, 2.
  void write_cifar10() {
    for (int b = 1; b <= 5; ++b) {
      std::string bytes;
      bytes += static_cast<char>(b) + image_bytes(10 * b);
      bytes += static_cast<char>(9 - b) + image_bytes(10 * b + 1);
      tests::write_file(path("data_batch_" + std::to_string(b) + ".bin"), bytes);
    }
    std::string test;
    for (int i = 0; i < 3; ++i) test += static_cast<char>(i) + image_bytes(100 + i);
    tests::write_file(path("test_batch.bin"), test);
  }

  std::string cifar100_record(int coarse, int fine, int seed) {
    return std::string{static_cast<char>(coarse), static_cast<char>(fine)} + image_bytes(seed);
  }

  std::string root_;
};

TEST_F(CifarReaderTest, ReadsCifar10TrainingFilesInOrder) {
  write_cifar10();
  Dataset train = read_cifar10_dataset(root_, /*train=*/true);
  EXPECT_EQ(train.num_examples, 10);
  EXPECT_EQ(train.channels, 3);
  EXPECT_EQ(train.height, 32);
  EXPECT_EQ(train.width, 32);
  EXPECT_EQ(train.labels, (std::vector<int32_t>{1, 8, 2, 7, 3, 6, 4, 5, 5, 4}));
  EXPECT_EQ(train.num_classes_seen, 9);
  ASSERT_EQ(train.pixels.size(), size_t{10} * kImageBytes);
  // Example 3 is the second record of data_batch_2.bin: seed 21, stored CHW as in the file.
  std::string expected = image_bytes(21);
  EXPECT_EQ(std::string(train.image(3), train.image(3) + kImageBytes), expected);
  EXPECT_EQ(train.label_source, "data.root: " + root_ + "/data_batch_{1..5}.bin");
}

TEST_F(CifarReaderTest, ReadsCifar10TestFile) {
  write_cifar10();
  Dataset test = read_cifar10_dataset(root_, /*train=*/false);
  EXPECT_EQ(test.num_examples, 3);
  EXPECT_EQ(test.labels, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(test.image(2)[0], 102);
  EXPECT_EQ(test.label_source, "data.root: " + path("test_batch.bin"));
}

TEST_F(CifarReaderTest, ReadsCifar100FineLabels) {
  tests::write_file(path("train.bin"), cifar100_record(3, 99, 7) + cifar100_record(19, 42, 8));
  tests::write_file(path("test.bin"), cifar100_record(0, 5, 9));
  Dataset train = read_cifar100_dataset(root_, /*train=*/true);
  EXPECT_EQ(train.num_examples, 2);
  EXPECT_EQ(train.labels, (std::vector<int32_t>{99, 42}));
  EXPECT_EQ(train.num_classes_seen, 100);
  EXPECT_EQ(std::string(train.image(1), train.image(1) + kImageBytes), image_bytes(8));
  Dataset test = read_cifar100_dataset(root_, /*train=*/false);
  EXPECT_EQ(test.labels, (std::vector<int32_t>{5}));
}

TEST_F(CifarReaderTest, MissingFileNamesIt) {
  write_cifar10();
  std::filesystem::remove(path("data_batch_3.bin"));
  std::string message = input_error_of([&] { read_cifar10_dataset(root_, true); });
  expect_contains(message, "data.root: " + path("data_batch_3.bin") + ": cannot open");
  message = input_error_of([&] { read_cifar100_dataset(root_, false); });
  expect_contains(message, "data.root: " + path("test.bin") + ": cannot open");
}

TEST_F(CifarReaderTest, DirectoryInPlaceOfAFileNamesIt) {
  write_cifar10();
  std::filesystem::remove(path("data_batch_2.bin"));
  std::filesystem::create_directory(path("data_batch_2.bin"));
  std::string message = input_error_of([&] { read_cifar10_dataset(root_, true); });
  EXPECT_EQ(message,
            "data.root: " + path("data_batch_2.bin") + ": is a directory, not a CIFAR data file");
  std::filesystem::create_directory(path("test.bin"));
  message = input_error_of([&] { read_cifar100_dataset(root_, false); });
  expect_contains(message, path("test.bin") + ": is a directory");
}

TEST_F(CifarReaderTest, SizeNotAWholeNumberOfRecords) {
  write_cifar10();
  tests::write_file(path("test_batch.bin"), std::string(3073 * 2 + 5, '\0'));
  std::string message = input_error_of([&] { read_cifar10_dataset(root_, false); });
  expect_contains(message, path("test_batch.bin"));
  expect_contains(message, "size 6151 bytes");
  expect_contains(message, "3073-byte CIFAR-10 record");

  // A CIFAR-10 file read as CIFAR-100 has the wrong record size too.
  tests::write_file(path("train.bin"), std::string(3073, '\0'));
  message = input_error_of([&] { read_cifar100_dataset(root_, true); });
  expect_contains(message, path("train.bin"));
  expect_contains(message, "3074-byte CIFAR-100 record");
}

TEST_F(CifarReaderTest, EmptyFileIsAnError) {
  tests::write_file(path("test.bin"), "");
  std::string message = input_error_of([&] { read_cifar100_dataset(root_, false); });
  expect_contains(message, path("test.bin") + ": size 0 bytes");
}

TEST_F(CifarReaderTest, LabelOutOfRange) {
  write_cifar10();
  tests::write_file(path("data_batch_4.bin"),
                    static_cast<char>(3) + image_bytes(0) + static_cast<char>(10) + image_bytes(1));
  std::string message = input_error_of([&] { read_cifar10_dataset(root_, true); });
  expect_contains(message, "data.root: " + path("data_batch_4.bin") + ": label 10 of record 1");

  tests::write_file(path("train.bin"), cifar100_record(1, 100, 0));
  message = input_error_of([&] { read_cifar100_dataset(root_, true); });
  expect_contains(message, "data.root: " + path("train.bin") + ": label 100 of record 0");
}

}  // namespace
}  // namespace dgqa
