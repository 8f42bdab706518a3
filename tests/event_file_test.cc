// Tests of TensorBoard's event files (io/event_file.h) and their CRC-32C (io/crc32c.h): the
// checksum against published check values, the bytes of a record against the framing and the
// protobuf wire format written out by hand, reading back, damaged records named by their
// offset, and cutting a file back to a step, torn last record included.
// tests/tensorboard_readback.py checks files of a whole run with Python's crc32c module.
#include "io/event_file.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/crc32c.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

namespace fs = std::filesystem;

uint32_t crc_of(const std::string& bytes) {
  return crc32c(bytes.data(), bytes.size());
}

// The check value of the CRC catalogues and RFC 3720's (iSCSI) test vectors, B.4.
TEST(Crc32cTest, MatchesPublishedValues) {
  EXPECT_EQ(crc_of("123456789"), 0xE3069283u);
  EXPECT_EQ(crc_of(""), 0u);
  EXPECT_EQ(crc_of(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc_of(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending += static_cast<char>(i);
    descending += static_cast<char>(31 - i);
  }
  EXPECT_EQ(crc_of(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc_of(descending), 0x113FDB5Cu);
}

TEST(Crc32cTest, MaskRotatesRightBy15AndAddsAConstant) {
  const uint32_t crc = 0xE3069283u;
  const uint32_t rotated = (crc >> 15) | (crc << 17);
  EXPECT_EQ(masked_crc32c("123456789", 9), rotated + 0xa282ead8u);
}

std::string le_bytes(uint64_t value, int count) {
  std::string bytes;
  for (int i = 0; i < count; ++i) bytes += static_cast<char>(value >> (8 * i));
  return bytes;
}

// A record as TFRecord frames it, assembled here rather than by the code under test.
std::string framed_by_hand(const std::string& data) {
  const std::string length = le_bytes(data.size(), 8);
  return length + le_bytes(masked_crc32c(length.data(), 8), 4) + data +
         le_bytes(masked_crc32c(data.data(), data.size()), 4);
}

TensorBoardEvent step_event(int64_t step, std::vector<TensorBoardScalar> scalars) {
  TensorBoardEvent event;
  event.wall_time = 1.7e9 + static_cast<double>(step);
  event.step = step;
  event.scalars = std::move(scalars);
  return event;
}

TensorBoardEvent loss_event(int64_t step) {
  const float loss = 2.5f - 0.25f * static_cast<float>(step);
  return step_event(step, {{"train/loss", loss}, {"train/lr", 1e-3f}});
}

class EventFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tests::make_temp_dir("event_file");
    path_ = dir_ + "/events.out.tfevents.1700000000.test";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes the events of `steps` with one writer; returns the file's size after each record,
  // the version record's first (where every record ends, measured without the reader).
  std::vector<uint64_t> write_steps(const std::vector<int64_t>& steps) {
    EventFileWriter writer(path_);
    std::vector<uint64_t> ends = {fs::file_size(path_)};
    for (int64_t step : steps) {
      writer.write(loss_event(step));
      ends.push_back(fs::file_size(path_));
    }
    return ends;
  }

  std::vector<int64_t> steps_in_file() {
    std::vector<int64_t> steps;
    for (const TensorBoardEvent& event : read_event_file(path_).events) steps.push_back(event.step);
    return steps;
  }

  std::string dir_, path_;
};

// The event of step 7 is, in the wire format: field 1 (wall_time, fixed64) 0.5; field 2 (step,
// varint) 7; field 5 (summary, length-delimited) holding field 1 (value) holding field 1 (tag)
// "a" and field 2 (simple_value, fixed32) 1.5f.
TEST_F(EventFileTest, RecordsAreTfRecordFramedEventsByTheWireFormat) {
  {
    EventFileWriter writer(path_);
    TensorBoardEvent event = step_event(7, {{"a", 1.5f}});
    event.wall_time = 0.5;
    writer.write(event);
  }
  const std::string bytes = tests::read_file(path_);
  // The version record: wall_time, then field 3 (file_version) "brain.Event:2".
  const std::string version_tail = std::string("\x1a\x0d", 2) + "brain.Event:2";
  ASSERT_GE(bytes.size(), 12u + 9 + version_tail.size() + 4);
  const std::string version_data = bytes.substr(12, 9 + version_tail.size());
  EXPECT_EQ(version_data[0], '\x09');
  EXPECT_EQ(version_data.substr(9), version_tail);
  const size_t first_size = 12 + version_data.size() + 4;
  EXPECT_EQ(bytes.substr(0, first_size), framed_by_hand(version_data));

  const std::string wall_time("\x09\x00\x00\x00\x00\x00\x00\xe0\x3f", 9);  // 0.5
  const std::string step("\x10\x07", 2);
  const std::string value =
      std::string("\x0a\x01", 2) + "a" + std::string("\x15\x00\x00\xc0\x3f", 5);
  const std::string summary = std::string("\x0a\x08", 2) + value;
  const std::string data = wall_time + step + std::string("\x2a\x0a", 2) + summary;
  EXPECT_EQ(bytes.substr(first_size), framed_by_hand(data));
}

TEST_F(EventFileTest, WhatIsWrittenReadsBack) {
  {
    EventFileWriter writer(path_);
    writer.write(step_event(1, {{"train/loss", 2.25f}, {"train/lr", 3e-4f}}));
    writer.write(step_event(2, {{"eval/top1", 0.5f}}));
  }
  const EventFileContents contents = read_event_file(path_);
  EXPECT_FALSE(contents.torn);
  ASSERT_EQ(contents.events.size(), 3u);
  EXPECT_EQ(contents.events[0].file_version, "brain.Event:2");
  EXPECT_TRUE(contents.events[0].scalars.empty());
  EXPECT_EQ(contents.events[1].step, 1);
  EXPECT_EQ(contents.events[1].wall_time, 1.7e9 + 1);
  ASSERT_EQ(contents.events[1].scalars.size(), 2u);
  EXPECT_EQ(contents.events[1].scalars[0].tag, "train/loss");
  EXPECT_EQ(contents.events[1].scalars[0].value, 2.25f);
  EXPECT_EQ(contents.events[1].scalars[1].tag, "train/lr");
  EXPECT_EQ(contents.events[1].scalars[1].value, 3e-4f);
  EXPECT_EQ(contents.events[2].step, 2);
  ASSERT_EQ(contents.events[2].scalars.size(), 1u);
  EXPECT_EQ(contents.events[2].scalars[0].tag, "eval/top1");
}

TEST_F(EventFileTest, ReopeningAppendsWithoutASecondVersionRecord) {
  write_steps({1, 2});
  write_steps({3});
  EXPECT_EQ(steps_in_file(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(read_event_file(path_).events[3].file_version, "");
}

TEST_F(EventFileTest, FileThatCannotBeCreatedIsAnInputErrorNamingIt) {
  const std::string path = dir_ + "/missing/events.out.tfevents.1.x";
  tests::expect_contains(tests::input_error_of([&] { EventFileWriter writer(path); }), path);
}

// Flips one byte of a file.
void flip_byte(const std::string& path, uint64_t offset) {
  std::string bytes = tests::read_file(path);
  bytes.at(offset) = static_cast<char>(bytes[offset] ^ 0x40);
  tests::write_file(path, bytes);
}

TEST_F(EventFileTest, FlippedDataByteIsADamagedRecordAtItsOffset) {
  const std::vector<uint64_t> ends = write_steps({1, 2, 3});
  flip_byte(path_, ends[1] + 12 + 3);  // inside the data of step 2's record
  const std::string message = tests::input_error_of([&] { read_event_file(path_); });
  tests::expect_contains(message, path_);
  tests::expect_contains(message, "at byte " + std::to_string(ends[1]) + " ");
  tests::expect_contains(message, "data fails its CRC-32C");
  // Cutting the file back reads it too, and refuses it the same way.
  EXPECT_EQ(tests::input_error_of([&] { truncate_event_file_after(path_, 1); }), message);
}

TEST_F(EventFileTest, FlippedLengthByteIsADamagedRecordAtItsOffset) {
  const std::vector<uint64_t> ends = write_steps({1, 2, 3});
  flip_byte(path_, ends[2]);  // the length of step 3's record
  const std::string message = tests::input_error_of([&] { read_event_file(path_); });
  tests::expect_contains(message, path_);
  tests::expect_contains(message, "at byte " + std::to_string(ends[2]) + " ");
  tests::expect_contains(message, "length fails its CRC-32C");
}

TEST_F(EventFileTest, TruncationDropsTheLaterStepsAndKeepsTheEarlierBytes) {
  const std::vector<uint64_t> ends = write_steps({1, 2, 3, 4, 5});
  const std::string before = tests::read_file(path_);
  truncate_event_file_after(path_, 3);
  EXPECT_EQ(steps_in_file(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(tests::read_file(path_), before.substr(0, ends[3]));
  // Appending goes on from there.
  write_steps({4});
  EXPECT_EQ(steps_in_file(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST_F(EventFileTest, TruncationWithNothingToDropLeavesTheFileAsItIs) {
  write_steps({1, 2});
  const std::string before = tests::read_file(path_);
  const auto modified = fs::last_write_time(path_);
  truncate_event_file_after(path_, 2);
  truncate_event_file_after(path_, 10);
  EXPECT_EQ(tests::read_file(path_), before);
  EXPECT_EQ(fs::last_write_time(path_), modified);
}

TEST_F(EventFileTest, TruncationToStepZeroKeepsOnlyTheVersionRecord) {
  const std::vector<uint64_t> ends = write_steps({1, 2});
  truncate_event_file_after(path_, 0);
  EXPECT_EQ(tests::read_file(path_).size(), ends[0]);
  EXPECT_EQ(read_event_file(path_).events.at(0).file_version, "brain.Event:2");
}

// A writer killed inside its last record: in the header, in the data, before the data's CRC.
TEST_F(EventFileTest, TornLastRecordIsReportedAndDroppedByTruncation) {
  for (uint64_t cut : {5, 12, 20}) {
    SCOPED_TRACE("the last record cut after " + std::to_string(cut) + " bytes");
    const std::vector<uint64_t> ends = write_steps({1, 2, 3});
    fs::resize_file(path_, ends[2] + cut);
    const EventFileContents contents = read_event_file(path_);
    EXPECT_TRUE(contents.torn);
    EXPECT_EQ(contents.torn_offset, ends[2]);
    EXPECT_EQ(steps_in_file(), (std::vector<int64_t>{0, 1, 2}));

    truncate_event_file_after(path_, 10);  // drops the torn record only
    EXPECT_EQ(fs::file_size(path_), ends[2]);
    EXPECT_FALSE(read_event_file(path_).torn);
    fs::remove(path_);
  }
  const std::vector<uint64_t> ends = write_steps({1, 2, 3});
  fs::resize_file(path_, ends[3] - 1);
  truncate_event_file_after(path_, 1);  // the torn record and step 2
  EXPECT_EQ(fs::file_size(path_), ends[1]);
}

}  // namespace
}  // namespace dgqa
