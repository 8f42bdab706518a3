// Fuzz target: TensorBoard's event files (io/event_file.h), as a resume reads and cuts them.
//
// Input: an event file. It is read with read_event_file twice: once as it is, and once with both
// CRCs of every whole record recomputed (walking the framing as the reader does), so that inputs
// get past the checksums to the protobuf parsing behind them. A file that reads is then cut back
// with truncate_event_file_after to the step of its middle event.
// Asserts: each read and cut ends normally or with an InputError naming the file; a file that was
// cut reads again, not torn, holding the events of the steps up to the cut, in their order.
#include <glog/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "io/crc32c.h"
#include "io/event_file.h"
#include "tests/fuzz/fuzz_support.h"

namespace dgqa::fuzz {
namespace {

uint64_t little_endian(const char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= uint64_t{static_cast<uint8_t>(in[i])} << (8 * i);
  return value;
}

void put_masked_crc(const char* data, size_t size, char* out) {
  const uint32_t crc = masked_crc32c(data, size);
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(crc >> (8 * i));
}

// The bytes with the CRCs of each record made right, up to where the file ends inside one.
std::string with_crcs_recomputed(std::string bytes) {
  size_t offset = 0;
  while (bytes.size() - offset >= 12) {
    char* header = &bytes[offset];
    put_masked_crc(header, 8, header + 8);
    const uint64_t length = little_endian(header, 8);
    const size_t left = bytes.size() - offset - 12;
    if (length > left || left - length < 4) break;
    put_masked_crc(header + 12, length, header + 12 + length);
    offset += 16 + length;
  }
  return bytes;
}

// Events equal bit for bit (a NaN value equals itself).
bool same_events(const std::vector<TensorBoardEvent>& a, const std::vector<TensorBoardEvent>& b) {
  const auto same_bits = [](const auto& x, const auto& y) {
    return std::memcmp(&x, &y, sizeof(x)) == 0;
  };
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!same_bits(a[i].wall_time, b[i].wall_time) || a[i].step != b[i].step ||
        a[i].file_version != b[i].file_version || a[i].scalars.size() != b[i].scalars.size()) {
      return false;
    }
    for (size_t j = 0; j < a[i].scalars.size(); ++j) {
      if (a[i].scalars[j].tag != b[i].scalars[j].tag ||
          !same_bits(a[i].scalars[j].value, b[i].scalars[j].value)) {
        return false;
      }
    }
  }
  return true;
}

void cut_in_the_middle(const std::string& path, const EventFileContents& contents) {
  const int64_t step =
      contents.events.empty() ? 0 : contents.events[contents.events.size() / 2].step;
  std::vector<TensorBoardEvent> kept;
  for (const TensorBoardEvent& event : contents.events) {
    if (event.step <= step) kept.push_back(event);
  }
  truncate_event_file_after(path, step);
  const EventFileContents cut = read_event_file(path);
  if (cut.torn || !same_events(cut.events, kept)) {
    finding("cutting an event file back to step " + std::to_string(step) + " kept " +
            std::to_string(cut.events.size()) + " events of " + std::to_string(kept.size()) +
            (cut.torn ? ", and a torn record" : ""));
  }
}

void read_and_cut(const std::string& bytes) {
  const std::string path = write_scratch_file("events.out.tfevents.1.fuzz", bytes);
  reads_or_refuses(path, [&] { cut_in_the_middle(path, read_event_file(path)); });
}

}  // namespace
}  // namespace dgqa::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FLAGS_minloglevel = google::GLOG_ERROR;  // no warning line for every torn input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dgqa::fuzz;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  read_and_cut(bytes);
  read_and_cut(with_crcs_recomputed(bytes));
  return 0;
}
