#include "model/group_allocator.h"

#include <cmath>
#include <string>

#include <stdexcept>

#include "common/error.h"
#include "common/philox.h"

namespace dgqa {
namespace {

// The RANDOM_INDEX correction's stream is (seed, step word, kFixupLayerTag | layer, batch): the
// tag keeps it apart from PGQA's noise streams (seed, step word, layer, group), which share the
// step word. Evaluation's step word is PGQA's, and the batch index tells its batches apart.
constexpr uint32_t kFixupLayerTag = 0x80000000u;
constexpr uint32_t kEvalStepWord = 0xFFFFFFFFu;

}  // namespace

GroupAllocator::GroupAllocator(const ModelConfig& config, int layer, uint64_t seed)
    : scheme_(config.attention),
      eval_mode_(config.dgqa_eval),
      window_counter_(config.dgqa_window_counter),
      fixup_(config.dgqa_fixup),
      num_heads_(config.num_heads),
      window_(config.dgqa_window),
      layer_(layer),
      seed_(seed),
      beta_(config.dgqa_beta),
      cache_(config.num_kv_heads, 0.f),
      allocation_(equal_allocation(config.num_heads, config.num_kv_heads)),
      active_(allocation_) {}

bool GroupAllocator::is_dgqa() const {
  return scheme_ == AttentionScheme::kDGQA_DIFF || scheme_ == AttentionScheme::kDGQA_EMA;
}

bool GroupAllocator::needs_key_norms(const ForwardContext& context) const {
  if (scheme_ == AttentionScheme::kKDGQA) return true;
  if (!is_dgqa()) return false;
  if (context.training) return window_step(context) % window_ == 0 && context.micro_batch == 0;
  return eval_mode_ != DgqaEvalMode::kFrozen;
}

int64_t GroupAllocator::window_step(const ForwardContext& context) const {
  if (window_counter_ == DgqaWindowCounter::kGlobalStep) return context.step;
  if (context.epoch_step < 0) {
    throw std::logic_error("DGQA's window counts epoch steps, but the pass has no epoch step");
  }
  return context.epoch_step;
}

// Draw n is word n % 4 of the Philox block n / 4; its top 24 bits scaled to [0, G) exactly.
IndexDraws GroupAllocator::random_index(const ForwardContext& context) const {
  if (fixup_ != DgqaFixup::kRandomIndex) return {};
  const uint32_t step_word = context.training ? static_cast<uint32_t>(context.step) : kEvalStepWord;
  const uint32_t batch = context.training ? 0u : static_cast<uint32_t>(context.eval_batch);
  const uint64_t G = cache_.size();
  return [=, n = uint64_t{0}]() mutable {
    const Philox4x32 counter{{static_cast<uint32_t>(n / 4), step_word,
                              kFixupLayerTag | static_cast<uint32_t>(layer_), batch}};
    const uint32_t word = philox4x32_10(counter, seed_).v[n % 4];
    ++n;
    return static_cast<int>((static_cast<uint64_t>(word >> 8) * G) >> 24);
  };
}

void GroupAllocator::choose(const ForwardContext& context, const std::vector<float>& norms) {
  if (scheme_ == AttentionScheme::kKDGQA) {
    active_ = kdgqa_allocation(norms, num_heads_);
    if (context.training) decision_ = {context.step, norms, {}};
    return;
  }
  if (!is_dgqa()) return;  // MHA, GQA, PGQA: the fixed equal allocation
  if (!needs_key_norms(context)) {
    active_ = allocation_;  // between windows, and frozen evaluation
    return;
  }
  const DgqaKind kind = scheme_ == AttentionScheme::kDGQA_DIFF ? DgqaKind::kDiff : DgqaKind::kEma;
  DgqaUpdate update =
      dgqa_update(kind, norms, cache_, beta_, window_, num_heads_, random_index(context));
  active_ = update.allocation;
  if (context.training) {
    decision_ = {context.step, norms, cache_};
    allocation_ = update.allocation;
    cache_ = update.new_cache;
  } else if (eval_mode_ == DgqaEvalMode::kPerBatchUpdate) {
    allocation_ = update.allocation;  // the paper's code keeps the batch's norms as its cache
    cache_ = norms;
  }  // PER_BATCH: evaluation works on a copy of the state
}

void GroupAllocator::set_state(const std::vector<float>& cache,
                               const std::vector<int64_t>& allocation) {
  if (cache.size() != cache_.size() || allocation.size() != allocation_.size()) {
    throw InputError("DGQA state has " + std::to_string(cache.size()) + " cache and " +
                     std::to_string(allocation.size()) + " allocation entries, expected " +
                     std::to_string(cache_.size()));
  }
  for (float value : cache) {
    if (!std::isfinite(value)) throw InputError("DGQA cache has a non-finite value");
  }
  check_allocation(allocation);
  cache_ = cache;
  allocation_.assign(allocation.begin(), allocation.end());  // each count fits: <= num_heads_
  active_ = allocation_;
}

// In 64 bits, before any narrowing: each count in [0, H], so the sum cannot overflow either.
void GroupAllocator::check_allocation(const std::vector<int64_t>& allocation) const {
  int64_t total = 0;
  for (size_t g = 0; g < allocation.size(); ++g) {
    if (allocation[g] < 0 || allocation[g] > num_heads_) {
      throw InputError("DGQA allocation count " + std::to_string(allocation[g]) + " of K/V head " +
                       std::to_string(g) + " is outside [0, " + std::to_string(num_heads_) + "]");
    }
    total += allocation[g];
  }
  if (total != num_heads_) {
    throw InputError("DGQA allocation sums to " + std::to_string(total) + ", expected " +
                     std::to_string(num_heads_) + " query heads");
  }
}

}  // namespace dgqa
