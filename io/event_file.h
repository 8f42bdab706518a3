// TensorBoard event files (events.out.tfevents.*), from which TensorBoard plots scalars over
// steps. A file is a sequence of records, each one serialized Event
// (io/tensorboard_event.proto) in TFRecord framing:
//   uint64 little-endian length; uint32 masked CRC-32C of those 8 bytes (io/crc32c.h);
//   length bytes of data; uint32 masked CRC-32C of the data.
// The first record of a file holds file_version "brain.Event:2", each later one the scalars of
// one step. The writer appends and flushes one record at a time, so a process killed while
// writing leaves at most its last record torn (the file ends inside it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace dgqa {

struct TensorBoardScalar {
  std::string tag;  // "train/loss": TensorBoard groups the tags by what comes before the '/'
  float value = 0;
};

// One record of an event file.
struct TensorBoardEvent {
  double wall_time = 0;      // seconds since the Unix epoch
  int64_t step = 0;          // 0 in the file_version record
  std::string file_version;  // the first record's; empty in the others
  std::vector<TensorBoardScalar> scalars;
};

// Seconds since the Unix epoch, now: the wall_time of an event written now.
double wall_time_now();

class EventFileWriter {
 public:
  // Opens path for appending; a new or empty file first gets the file_version record. Throws
  // InputError naming the path if the file cannot be opened or created.
  explicit EventFileWriter(const std::string& path);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // Appends the event as one record and flushes it to the operating system. Throws
  // std::runtime_error naming the path if the write fails.
  void write(const TensorBoardEvent& event);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

struct EventFileContents {
  std::vector<TensorBoardEvent> events;  // every whole record, in file order
  bool torn = false;                     // the file ends inside a record (its writer was killed)
  uint64_t torn_offset = 0;              // where that record starts
};

// Reads an event file, checking both CRCs of every record. A record that fails a CRC, or whose
// data is not an Event, is an InputError naming the path and the byte offset of the record; a
// file that ends inside its last record is not an error (see EventFileContents).
EventFileContents read_event_file(const std::string& path);

// Cuts an event file back to `step`, for a run resumed from the checkpoint of that step:
// rewrites it atomically (common/atomic_file.h) without the records of later steps and without
// a torn last record (with a warning). A file with nothing to drop is left as it is. Errors as
// read_event_file's.
void truncate_event_file_after(const std::string& path, int64_t step);

}  // namespace dgqa
