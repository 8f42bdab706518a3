#include "data/sampler.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "common/error.h"
#include "common/philox.h"
#include "data/random_streams.h"

namespace dgqa {
namespace {

// Uniform 32-bit word `draw` of the shuffle stream of (seed, epoch).
uint32_t shuffle_word(uint64_t seed, int64_t epoch, uint64_t draw) {
  Philox4x32 counter{
      {static_cast<uint32_t>(draw / 4), static_cast<uint32_t>(epoch), 0, kShuffleStreamTag}};
  return philox4x32_10(counter, seed).v[draw % 4];
}

}  // namespace

std::vector<int64_t> epoch_permutation(int64_t num_examples, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(num_examples);
  std::iota(order.begin(), order.end(), int64_t{0});
  uint64_t draw = 0;
  for (int64_t i = num_examples - 1; i > 0; --i) {
    // A uniform j in [0, i] by multiply-shift: floor(word * (i + 1) / 2^32).
    uint64_t j = (uint64_t{shuffle_word(seed, epoch, draw++)} * static_cast<uint64_t>(i + 1)) >> 32;
    std::swap(order[i], order[j]);
  }
  return order;
}

std::vector<int64_t> rank_share(const std::vector<int64_t>& global_batch, int rank,
                                int world_size) {
  std::vector<int64_t> share;
  for (size_t position = rank; position < global_batch.size(); position += world_size) {
    share.push_back(global_batch[position]);
  }
  return share;
}

DistributedSampler::DistributedSampler(int64_t num_examples, const SamplerOptions& options)
    : num_examples_(num_examples), options_(options) {
  if (options.world_size <= 0 || options.rank < 0 || options.rank >= options.world_size) {
    throw std::invalid_argument("DistributedSampler: rank " + std::to_string(options.rank) +
                                " is outside world size " + std::to_string(options.world_size));
  }
  const std::string batch_size = std::to_string(options.global_batch_size);
  if (options.global_batch_size <= 0) {
    throw InputError(options.batch_size_field + ": " + batch_size + " must be positive");
  }
  if (options.train && options.global_batch_size % options.world_size != 0) {
    throw InputError(options.batch_size_field + ": " + batch_size +
                     " is not divisible by the world size " + std::to_string(options.world_size));
  }
  if (options.train && options.global_batch_size > num_examples) {
    throw InputError(options.batch_size_field + ": " + batch_size + " exceeds the " +
                     std::to_string(num_examples) + " training examples");
  }
}

int64_t DistributedSampler::batches_per_epoch() const {
  const int64_t size = options_.global_batch_size;
  return options_.train ? num_examples_ / size : (num_examples_ + size - 1) / size;
}

void DistributedSampler::set_epoch(int64_t epoch) {
  if (options_.train) {
    order_ = epoch_permutation(num_examples_, options_.seed, epoch);
  } else {
    order_.resize(num_examples_);
    std::iota(order_.begin(), order_.end(), int64_t{0});
  }
}

std::vector<int64_t> DistributedSampler::global_batch(int64_t batch) const {
  if (static_cast<int64_t>(order_.size()) != num_examples_) {
    throw std::logic_error("DistributedSampler: set_epoch was not called");
  }
  if (batch < 0 || batch >= batches_per_epoch()) {
    throw std::out_of_range("DistributedSampler: batch " + std::to_string(batch) +
                            " is outside the epoch's " + std::to_string(batches_per_epoch()));
  }
  const int64_t begin = batch * options_.global_batch_size;
  const int64_t end = std::min<int64_t>(begin + options_.global_batch_size, order_.size());
  return std::vector<int64_t>(order_.begin() + begin, order_.begin() + end);
}

std::vector<int64_t> DistributedSampler::rank_batch(int64_t batch) const {
  return rank_share(global_batch(batch), options_.rank, options_.world_size);
}

}  // namespace dgqa
