#include "model/group_allocator.h"

#include <cmath>
#include <string>

#include "common/error.h"
#include "model/allocation.h"

namespace dgqa {

GroupAllocator::GroupAllocator(const ModelConfig& config)
    : scheme_(config.attention),
      eval_mode_(config.dgqa_eval),
      num_heads_(config.num_heads),
      window_(config.dgqa_window),
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
  if (context.training) return context.step % window_ == 0 && context.micro_batch == 0;
  return eval_mode_ == DgqaEvalMode::kPerBatch;
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
  DgqaUpdate update = dgqa_update(kind, norms, cache_, beta_, window_, num_heads_);
  active_ = update.allocation;
  if (context.training) {  // evaluation works on a copy of the state
    decision_ = {context.step, norms, cache_};
    allocation_ = update.allocation;
    cache_ = update.new_cache;
  }
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
