#include "trainer/zero_shards.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace dgqa {

std::vector<int64_t> zero_shard_bounds(int64_t size, int world_size) {
  if (size < 0 || world_size < 1) {
    throw std::invalid_argument("zero_shard_bounds: cannot split " + std::to_string(size) +
                                " floats among " + std::to_string(world_size) + " ranks");
  }
  const int64_t blocks = (size + kShardAlignment - 1) / kShardAlignment;
  std::vector<int64_t> bounds(world_size + 1);
  for (int rank = 0; rank <= world_size; ++rank) {
    bounds[rank] = std::min(size, blocks * rank / world_size * kShardAlignment);
  }
  return bounds;
}

ShardPiece shard_piece(const std::vector<int64_t>& bounds, int rank, int64_t begin, int64_t end) {
  return {std::max(begin, bounds[rank]), std::min(end, bounds[rank + 1])};
}

}  // namespace dgqa
