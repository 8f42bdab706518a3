// Decides, for one attention layer and one forward pass, which K/V head each query head uses,
// following the layer's scheme (docs/design.md §3.2-3.4), and keeps the DGQA state between steps.
#pragma once

#include <cstdint>
#include <vector>

#include "model/allocation.h"
#include "model/model_config.h"

namespace dgqa {

// What kind of forward pass is running; the allocation rules depend on it.
struct ForwardContext {
  bool training = true;
  int64_t step = 0;     // global optimizer step (training) – drives DGQA windows and PGQA noise
  int micro_batch = 0;  // which forward of the step (gradient accumulation): DGQA decides in 0
  // Training: the step's place in its epoch (DGQA's window with dgqa_window_counter
  // EPOCH_STEP); -1 when the caller has no epochs. Evaluation: the batch's index in the split.
  int64_t epoch_step = -1;
  int64_t eval_batch = 0;
  float label_smoothing = 0.f;  // the loss's (docs/design.md §3.6); 0 = plain cross-entropy
  // Training with Mixup/CutMix (docs/design.md §3.6): host arrays of the B images' second labels
  // and their own labels' weights; image i's target is mix_weights[i] * smooth(labels[i]) +
  // (1 - mix_weights[i]) * smooth(mix_labels[i]). Null: the labels alone.
  const int32_t* mix_labels = nullptr;
  const float* mix_weights = nullptr;
  // Training: image i of this forward is image sample_first + i * sample_stride of the global
  // batch (the rank's strided deal, docs/design.md §5.5); drop path's draws are keyed by it.
  int64_t sample_first = 0;
  int64_t sample_stride = 1;
};

// The inputs of a training step's allocation that was decided from key norms (KDGQA's at
// every step, DGQA's at window steps): what the metrics record so that the allocation can be
// recomputed from them (docs/design.md §7.6).
struct KeyNormDecision {
  int64_t step = -1;                // the ForwardContext step; -1: none in this process yet
  std::vector<float> norms;         // the layer's globally summed key norms (G values)
  std::vector<float> cache_before;  // DGQA: the cache the norms were compared with
};

class GroupAllocator {
 public:
  // The allocator of attention layer `layer` of a model whose random streams are keyed by
  // `seed` (DGQA's RANDOM_INDEX correction draws from one).
  GroupAllocator(const ModelConfig& config, int layer, uint64_t seed);

  // Whether this forward pass needs the (globally summed) key norms of the layer.
  bool needs_key_norms(const ForwardContext& context) const;

  // Chooses the allocation for this forward pass. `global_norms` (G values) is read only when
  // needs_key_norms() said so. DGQA training steps on a window update the cache and the
  // allocation; evaluation changes the state only with dgqa_eval PER_BATCH_UPDATE.
  void choose(const ForwardContext& context, const std::vector<float>& global_norms);

  // The allocation of the current forward pass (G counts summing to H).
  const std::vector<int>& active_allocation() const { return active_; }

  // The last training allocation decided from key norms; evaluation does not change it.
  const KeyNormDecision& last_decision() const { return decision_; }

  // The persistent DGQA state (saved in weights and checkpoints).
  const std::vector<float>& cache() const { return cache_; }
  const std::vector<int>& allocation() const { return allocation_; }
  // Sets the state read from a file (its allocation is I64 there). InputError unless there are
  // G finite cache values and G counts, each in [0, H], summing to H; the counts are checked in
  // 64 bits before they are narrowed.
  void set_state(const std::vector<float>& cache, const std::vector<int64_t>& allocation);

 private:
  bool is_dgqa() const;
  int64_t window_step(const ForwardContext& context) const;
  IndexDraws random_index(const ForwardContext& context) const;
  void check_allocation(const std::vector<int64_t>& allocation) const;

  AttentionScheme scheme_;
  DgqaEvalMode eval_mode_;
  DgqaWindowCounter window_counter_;
  DgqaFixup fixup_;
  int num_heads_, window_, layer_;
  uint64_t seed_;
  float beta_;
  std::vector<float> cache_;     // DGQA cache, starts at 0
  std::vector<int> allocation_;  // the training allocation (DGQA) or the fixed one
  std::vector<int> active_;      // the allocation used by the current forward pass
  KeyNormDecision decision_;
};

}  // namespace dgqa
