// Reading (Fashion-)MNIST IDX files, plain and gzipped, and the label check.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/idx_reader.h"
#include "data/label_check.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::expect_contains;
using tests::input_error_of;

constexpr uint32_t kImagesMagic = 0x00000803;
constexpr uint32_t kLabelsMagic = 0x00000801;

// An IDX file: big-endian magic, big-endian dimension sizes, then the payload.
std::string idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims,
                      const std::vector<uint8_t>& payload) {
  std::string bytes;
  auto put_word = [&](uint32_t word) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(word >> shift));
  };
  put_word(magic);
  for (uint32_t dim : dims) put_word(dim);
  bytes.append(payload.begin(), payload.end());
  return bytes;
}

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

// Three 2x3 images whose pixels count up from 0, with labels 4, 0, 2.
class IdxReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tests::make_temp_dir("dgqa_idx_");
    for (int i = 0; i < 18; ++i) pixels_.push_back(static_cast<uint8_t>(i));
    images_ = idx_bytes(kImagesMagic, {3, 2, 3}, pixels_);
    labels_ = idx_bytes(kLabelsMagic, {3}, {4, 0, 2});
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    tests::write_file(path, bytes);
    return path;
  }

  Dataset read(const std::string& images_path, const std::string& labels_path) {
    return read_idx_dataset(images_path, labels_path, "data.train_images", "data.train_labels");
  }

  void expect_fixture(const Dataset& dataset, const std::string& labels_path) {
    EXPECT_EQ(dataset.num_examples, 3);
    EXPECT_EQ(dataset.channels, 1);
    EXPECT_EQ(dataset.height, 2);
    EXPECT_EQ(dataset.width, 3);
    EXPECT_EQ(dataset.pixels, pixels_);
    EXPECT_EQ(dataset.labels, (std::vector<int32_t>{4, 0, 2}));
    EXPECT_EQ(dataset.num_classes_seen, 5);
    EXPECT_EQ(dataset.label_source, "data.train_labels: " + labels_path);
    EXPECT_EQ(dataset.image(1)[0], 6);
  }

  std::string dir_;
  std::vector<uint8_t> pixels_;
  std::string images_, labels_;
};

TEST_F(IdxReaderTest, ReadsPlainFiles) {
  std::string labels_path = write("labels", labels_);
  expect_fixture(read(write("images", images_), labels_path), labels_path);
}

TEST_F(IdxReaderTest, ReadsGzippedFiles) {
  std::string images_path = dir_ + "/images.gz", labels_path = dir_ + "/labels.gz";
  write_gzip(images_path, images_);
  write_gzip(labels_path, labels_);
  expect_fixture(read(images_path, labels_path), labels_path);
}

TEST_F(IdxReaderTest, MissingFileNamesFieldAndPath) {
  std::string missing = dir_ + "/no_such_file.gz";
  std::string message = input_error_of([&] { read(missing, write("labels", labels_)); });
  expect_contains(message, "data.train_images: " + missing + ": cannot open");
}

TEST_F(IdxReaderTest, WrongImageMagic) {
  std::string path = write("images", idx_bytes(kLabelsMagic, {3, 2, 3}, pixels_));
  std::string message = input_error_of([&] { read(path, write("labels", labels_)); });
  expect_contains(message, "data.train_images: " + path +
                               ": wrong IDX magic 0x00000801 (expected 0x00000803 for images)");
}

TEST_F(IdxReaderTest, WrongLabelMagicInGzip) {
  std::string path = dir_ + "/labels.gz";
  write_gzip(path, idx_bytes(kImagesMagic, {3}, {4, 0, 2}));
  std::string message = input_error_of([&] { read(write("images", images_), path); });
  expect_contains(message, "data.train_labels: " + path +
                               ": wrong IDX magic 0x00000803 (expected 0x00000801 for labels)");
}

TEST_F(IdxReaderTest, TruncatedHeader) {
  std::string path = write("images", images_.substr(0, 10));
  std::string message = input_error_of([&] { read(path, write("labels", labels_)); });
  expect_contains(message, path + ": truncated");
  expect_contains(message, "IDX header");
}

TEST_F(IdxReaderTest, TruncatedPlainImages) {
  std::string path = write("images", images_.substr(0, images_.size() - 1));
  std::string message = input_error_of([&] { read(path, write("labels", labels_)); });
  expect_contains(message, "data.train_images: " + path + ": truncated");
  expect_contains(message, "3 images of 2x3 (18 bytes)");
}

TEST_F(IdxReaderTest, TruncatedGzippedLabels) {
  std::string path = dir_ + "/labels.gz";
  write_gzip(path, labels_.substr(0, labels_.size() - 2));
  std::string message = input_error_of([&] { read(write("images", images_), path); });
  expect_contains(message, "data.train_labels: " + path + ": truncated");
}

TEST_F(IdxReaderTest, CutGzipStreamIsAnError) {
  std::string gz_path = dir_ + "/images.gz";
  write_gzip(gz_path, images_);
  std::string compressed = tests::read_file(gz_path);
  std::string path = write("cut.gz", compressed.substr(0, compressed.size() / 2));
  std::string message = input_error_of([&] { read(path, write("labels", labels_)); });
  expect_contains(message, "data.train_images: " + path + ": ");
}

TEST_F(IdxReaderTest, HeaderPromisingHugeDataIsTruncatedNotAllocated) {
  std::string path = write("images", idx_bytes(kImagesMagic, {2000000000, 1000, 1000}, pixels_));
  std::string message = input_error_of([&] { read(path, write("labels", labels_)); });
  expect_contains(message, path + ": truncated");
}

TEST_F(IdxReaderTest, CountMismatchNamesBothFiles) {
  std::string images_path = write("images", images_);
  std::string labels_path = write("labels", idx_bytes(kLabelsMagic, {2}, {4, 0}));
  std::string message = input_error_of([&] { read(images_path, labels_path); });
  expect_contains(message, "data.train_labels: " + labels_path + ": holds 2 labels");
  expect_contains(message, "data.train_images: " + images_path + " holds 3 images");
}

TEST_F(IdxReaderTest, CallerChoosesFieldNames) {
  std::string missing = dir_ + "/absent";
  std::string message = input_error_of([&] {
    read_idx_dataset(write("images", images_), missing, "data.test_images", "data.test_labels");
  });
  expect_contains(message, "data.test_labels: " + missing);
}

TEST_F(IdxReaderTest, LabelCheckNamesSourceLabelAndIndex) {
  std::string labels_path = write("labels", labels_);
  Dataset dataset = read(write("images", images_), labels_path);
  EXPECT_NO_THROW(check_labels_fit(dataset, 5));
  std::string message = input_error_of([&] { check_labels_fit(dataset, 3); });
  expect_contains(message, "data.train_labels: " + labels_path);
  expect_contains(message, "label 4 of example 0");
  expect_contains(message, "model.num_classes = 3");
}

TEST(FashionMnistTest, ReadsTheRealFiles) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  const std::string train_images = dir + "train-images-idx3-ubyte.gz";
  if (!std::ifstream(train_images).good()) GTEST_SKIP() << "no Fashion-MNIST files in " << dir;

  Dataset train = read_idx_dataset(train_images, dir + "train-labels-idx1-ubyte.gz",
                                   "data.train_images", "data.train_labels");
  Dataset test =
      read_idx_dataset(dir + "t10k-images-idx3-ubyte.gz", dir + "t10k-labels-idx1-ubyte.gz",
                       "data.test_images", "data.test_labels");
  EXPECT_EQ(train.num_examples, 60000);
  EXPECT_EQ(test.num_examples, 10000);
  for (const Dataset* dataset : {&train, &test}) {
    EXPECT_EQ(dataset->channels, 1);
    EXPECT_EQ(dataset->height, 28);
    EXPECT_EQ(dataset->width, 28);
    EXPECT_EQ(dataset->num_classes_seen, 10);
    EXPECT_EQ(dataset->pixels.size(), size_t(dataset->num_examples) * 28 * 28);
    EXPECT_NO_THROW(check_labels_fit(*dataset, 10));
  }
}

}  // namespace
}  // namespace dgqa
