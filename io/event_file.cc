#include "io/event_file.h"

#include <glog/logging.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>

#include "common/atomic_file.h"
#include "common/error.h"
#include "io/crc32c.h"
#include "io/tensorboard_event.pb.h"

namespace dgqa {
namespace {

constexpr char kFileVersion[] = "brain.Event:2";
constexpr uint64_t kHeaderBytes = 12;  // the length and its masked CRC
constexpr uint64_t kFooterBytes = 4;   // the data's masked CRC

void put_little_endian(uint64_t value, int bytes, char* out) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<char>(value >> (8 * i));
}

uint64_t get_little_endian(const char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= uint64_t{static_cast<uint8_t>(in[i])} << (8 * i);
  return value;
}

// The record of `data` in TFRecord framing.
std::string framed(const std::string& data) {
  char header[kHeaderBytes], footer[kFooterBytes];
  put_little_endian(data.size(), 8, header);
  put_little_endian(masked_crc32c(header, 8), 4, header + 8);
  put_little_endian(masked_crc32c(data.data(), data.size()), 4, footer);
  return std::string(header, kHeaderBytes) + data + std::string(footer, kFooterBytes);
}

std::string serialized(const TensorBoardEvent& event) {
  tensorboard::Event proto;
  proto.set_wall_time(event.wall_time);
  if (event.step != 0) proto.set_step(event.step);
  if (!event.file_version.empty()) {
    proto.set_file_version(event.file_version);
  } else {
    for (const TensorBoardScalar& scalar : event.scalars) {
      tensorboard::Summary::Value* value = proto.mutable_summary()->add_value();
      value->set_tag(scalar.tag);
      value->set_simple_value(scalar.value);
    }
  }
  return proto.SerializeAsString();
}

[[noreturn]] void damaged(const std::string& path, uint64_t offset, const std::string& what) {
  throw InputError("event file " + path + ": the record at byte " + std::to_string(offset) +
                   " is damaged: " + what);
}

TensorBoardEvent parsed(const std::string& data, const std::string& path, uint64_t offset) {
  tensorboard::Event proto;
  if (!proto.ParseFromString(data)) damaged(path, offset, "its data is not an Event");
  TensorBoardEvent event;
  event.wall_time = proto.wall_time();
  event.step = proto.step();
  event.file_version = proto.file_version();
  for (const tensorboard::Summary::Value& value : proto.summary().value()) {
    if (value.has_simple_value()) event.scalars.push_back({value.tag(), value.simple_value()});
  }
  return event;
}

struct Record {
  uint64_t offset = 0;
  std::string data;
};

struct Records {
  std::vector<Record> whole;
  std::optional<uint64_t> torn_offset;  // where a record that the file ends inside starts
};

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open event file " + path + ": " + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InputError("cannot read event file " + path);
  return bytes;
}

// The records of a file, each checked against both of its CRCs.
Records read_records(const std::string& path) {
  const std::string bytes = file_bytes(path);
  Records records;
  uint64_t offset = 0;
  while (offset < bytes.size()) {
    const uint64_t left = bytes.size() - offset;
    const char* header = bytes.data() + offset;
    if (left < kHeaderBytes) break;  // cut short in its header
    if (get_little_endian(header + 8, 4) != masked_crc32c(header, 8)) {
      damaged(path, offset, "its length fails its CRC-32C");
    }
    const uint64_t length = get_little_endian(header, 8);
    // A length whose CRC holds but that runs past the end: a record cut short.
    if (length > left - kHeaderBytes || left - kHeaderBytes - length < kFooterBytes) break;
    const char* data = header + kHeaderBytes;
    if (get_little_endian(data + length, 4) != masked_crc32c(data, length)) {
      damaged(path, offset, "its data fails its CRC-32C");
    }
    records.whole.push_back({offset, std::string(data, length)});
    offset += kHeaderBytes + length + kFooterBytes;
  }
  if (offset < bytes.size()) records.torn_offset = offset;
  return records;
}

std::string system_error(const std::string& what, const std::string& path) {
  return what + " event file " + path + ": " + std::strerror(errno);
}

}  // namespace

double wall_time_now() {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration<double>(since_epoch).count();
}

EventFileWriter::EventFileWriter(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "ab");
  if (file_ == nullptr) throw InputError(system_error("cannot open", path) + " for writing");
  try {
    if (std::fseek(file_, 0, SEEK_END) != 0 || std::ftell(file_) < 0) {
      throw InputError(system_error("cannot seek in", path));
    }
    if (std::ftell(file_) == 0) {
      TensorBoardEvent version;
      version.wall_time = wall_time_now();
      version.file_version = kFileVersion;
      write(version);
    }
  } catch (...) {
    std::fclose(file_);  // the destructor of an object under construction does not run
    throw;
  }
}

EventFileWriter::~EventFileWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void EventFileWriter::write(const TensorBoardEvent& event) {
  const std::string record = framed(serialized(event));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() ||
      std::fflush(file_) != 0) {
    throw std::runtime_error(system_error("cannot write", path_));
  }
}

EventFileContents read_event_file(const std::string& path) {
  const Records records = read_records(path);
  EventFileContents contents;
  for (const Record& record : records.whole) {
    contents.events.push_back(parsed(record.data, path, record.offset));
  }
  contents.torn = records.torn_offset.has_value();
  contents.torn_offset = records.torn_offset.value_or(0);
  return contents;
}

void truncate_event_file_after(const std::string& path, int64_t step) {
  const Records records = read_records(path);
  std::string kept;
  bool dropped = false;
  for (const Record& record : records.whole) {
    const bool keep = parsed(record.data, path, record.offset).step <= step;
    if (keep) kept += framed(record.data);  // the same bytes as in the file
    dropped = dropped || !keep;
  }
  if (records.torn_offset) {
    LOG(WARNING) << "Event file " << path << " ends inside the record at byte "
                 << *records.torn_offset << " (its writer was killed): dropping that record";
  }
  if (!dropped && !records.torn_offset) return;
  AtomicFileWriter out(path);
  out.append(kept.data(), kept.size());
  out.commit();
}

}  // namespace dgqa
