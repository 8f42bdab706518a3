// Fuzz target: the expansion of shard lists (expand_shard_list, data/tar_shards.h).
//
// Input: the text of data.train_shards, whitespace-separated patterns with brace groups
// ("train-{000000..000127}.tar {a,b}.tar"), expanded under the root "/data" with limits of
// 1000 shards and 64 KiB of paths: the same code as the default limits, without inputs that
// each build 10^5 names and slow the fuzzer a hundredfold.
// Asserts: the expansion ends with a list or an InputError naming data.train_shards; a list
// is not empty and each of its paths is non-empty and under the root unless absolute.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/tar_shards.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dgqa::fuzz;
  const std::string patterns(reinterpret_cast<const char*>(data), size);
  reads_or_refuses("data.train_shards", [&] {
    const std::vector<std::string> shards =
        dgqa::expand_shard_list(patterns, "/data", "data.train_shards", {1000, 64 << 10});
    if (shards.empty()) finding("an empty shard list");
    for (const std::string& shard : shards) {
      if (shard.rfind("/", 0) != 0) finding("the shard '" + shard + "' is not under the root");
    }
  });
  return 0;
}
