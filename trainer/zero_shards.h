// ZeRO-1's split of the flat parameter buffer among the ranks (docs/design.md §5.11): rank r owns
// [bounds[r], bounds[r + 1]) of the parameters, their gradient sums and their AdamW moments.
#pragma once

#include <cstdint>
#include <vector>

namespace dgqa {

// Shard boundaries start at multiples of this many floats (256 bytes), where NCCL and MPI copy
// fastest, as the gradient buckets do.
constexpr int64_t kShardAlignment = 64;

// world_size + 1 offsets from 0 to size: the buffer cut into world_size contiguous shards whose
// boundaries are multiples of kShardAlignment, as equal as that allows (in blocks of
// kShardAlignment floats, they differ by at most one block; the last one may end short).
// Throws std::invalid_argument for a negative size or a world size below 1.
std::vector<int64_t> zero_shard_bounds(int64_t size, int world_size);

// The part of [begin, end) inside [bounds[rank], bounds[rank + 1]), as [first, last); empty
// (first >= last) when they do not meet.
struct ShardPiece {
  int64_t first = 0, last = 0;
  bool empty() const { return first >= last; }
};
ShardPiece shard_piece(const std::vector<int64_t>& bounds, int rank, int64_t begin, int64_t end);

}  // namespace dgqa
