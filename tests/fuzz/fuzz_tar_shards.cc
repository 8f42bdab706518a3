// Fuzz target: the tar shard index (data/tar_shards.h).
//
// Input: one tar shard, written to a scratch file and opened with open_tar_shards; every
// sample of the index is then read. The shard is opened a second time with a valid header
// checksum in every 512-byte block (a data block's bytes 148-155 overwritten too), so that
// mutated headers also get past the checksum to the parsing behind it.
// Asserts: opening ends with an index or an InputError naming the shard; an index has at least
// one sample, each with a label >= 0, a name that names the shard, and bytes that read back
// (or an InputError naming the sample).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "data/tar_shards.h"
#include "tests/fuzz/fuzz_support.h"

namespace dgqa::fuzz {
namespace {

constexpr size_t kBlock = 512;

void check_samples(const EncodedStore& store, const std::string& shard) {
  if (store.size() < 1) finding("an index of " + std::to_string(store.size()) + " samples");
  std::vector<uint8_t> bytes;
  for (int64_t i = 0; i < store.size(); ++i) {
    const std::string name = store.name(i);
    if (name.find(shard) == std::string::npos) finding("sample name '" + name + "'");
    if (store.label(i) < 0) finding("sample '" + name + "' has a negative label");
    reads_or_refuses(name, [&] { store.read(i, &bytes); });
  }
}

void open_and_check(const std::vector<uint8_t>& shard_bytes) {
  const std::string shard =
      write_scratch_file("shard-000000.tar", shard_bytes.data(), shard_bytes.size());
  reads_or_refuses(shard, [&] { check_samples(*open_tar_shards({shard}), shard); });
}

// The checksum field (bytes 148-155) of every non-zero block set as a tar writer sets it: the
// sum of the block's bytes with the field taken as spaces, in six octal digits, NUL, space.
std::vector<uint8_t> with_checksums_fixed(std::vector<uint8_t> tar) {
  for (size_t at = 0; tar.size() - at >= kBlock; at += kBlock) {
    uint8_t* block = tar.data() + at;
    if (std::all_of(block, block + kBlock, [](uint8_t b) { return b == 0; })) continue;
    std::memset(block + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < kBlock; ++i) sum += block[i];
    char field[8];
    std::snprintf(field, sizeof(field), "%06o", sum);
    std::memcpy(block + 148, field, 7);  // the digits and their NUL; the space stays
  }
  return tar;
}

}  // namespace
}  // namespace dgqa::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dgqa::fuzz;
  const std::vector<uint8_t> shard(data, data + size);
  open_and_check(shard);
  const std::vector<uint8_t> fixed = with_checksums_fixed(shard);
  if (fixed != shard) open_and_check(fixed);
  return 0;
}
