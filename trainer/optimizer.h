// AdamW over the model's flat parameter buffer, with optional global-norm gradient clipping,
// per-tensor weight-decay exclusion and timm's layer-wise learning-rate decay. Under ZeRO-1
// (docs/design.md §5.11) each rank's AdamW updates only its shard of the buffer and keeps only
// that shard's moments; the gradient norm is still the global one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "kernels/backend.h"
#include "model/param_layout.h"

namespace dgqa {

struct AdamWSettings {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.05f;
  float grad_clip = 0.f;     // clip by global L2 norm; 0 = off
  bool no_decay_1d = false;  // exclude 1-D tensors and the cls/pos tokens from weight decay
  float layer_decay = 1.f;   // tensor of layer l gets lr * layer_decay^(depth + 1 - l); 1 = off
};

// The layer of a tensor in timm's layer-wise LR decay (param_groups_layer_decay with the ViT's
// group_matcher): 0 for the patch embedding, cls_token and pos_embed, i + 1 for block i, depth
// for the final norm (matched as a continuation of the last block), depth + 1 for the head.
int lr_decay_layer(const std::string& tensor_name, int depth);

// The part [begin, end) of the flat buffer an AdamW updates, and the communicator over whose
// ranks the gradient's sum of squares is completed when the other parts belong to other ranks
// (ZeRO-1); null when this is the whole buffer.
struct OptimizerShard {
  int64_t begin = 0, end = 0;
  Communicator* comm = nullptr;
};

class AdamW {
 public:
  // Over the whole buffer.
  AdamW(Backend& backend, const ParamLayout& layout, const AdamWSettings& settings);
  // Over `shard` only: grads must hold the gradient sums in it (elsewhere they are not read).
  AdamW(Backend& backend, const ParamLayout& layout, const AdamWSettings& settings,
        const OptimizerShard& shard);
  ~AdamW();
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  // One optimizer step with learning rate lr (times each tensor's layer scale) on (params,
  // grads), inside the shard. Returns the global L2 norm of the gradients before clipping (as
  // torch.nn.utils.clip_grad_norm_ returns it), the same on every rank.
  float step(float* params, float* grads, float lr);

  int64_t steps_taken() const { return steps_; }

  // The shard's moments (layout order, from shard_begin()) and the step count, for checkpoints.
  int64_t shard_begin() const { return shard_.begin; }
  int64_t shard_end() const { return shard_.end; }
  std::vector<float> first_moments_to_host() const;
  std::vector<float> second_moments_to_host() const;
  void restore(const std::vector<float>& first, const std::vector<float>& second, int64_t steps);

 private:
  Backend& backend_;
  const ParamLayout& layout_;
  // The shard's part of [begin, end), in the flat buffer's offsets.
  void update(float* params, float* grads, int64_t begin, int64_t end, float lr,
              float weight_decay);
  // The sum of the squared gradients of the whole buffer.
  double sum_squares(const float* grads) const;

  AdamWSettings settings_;
  OptimizerShard shard_;
  // Per tensor (layout order): its learning-rate scale and weight decay. Empty when every
  // tensor has scale 1 and the same decay (one update over the whole buffer).
  struct TensorRule {
    double lr_scale;
    float weight_decay;
  };
  std::vector<TensorRule> rules_;
  float* m_ = nullptr;  // first moments of the shard, layout order
  float* v_ = nullptr;  // second moments
  int64_t steps_ = 0;
};

}  // namespace dgqa
