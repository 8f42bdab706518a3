// The Vision Transformer of docs/design.md §3 with explicit forward and backward passes
// over a flat parameter buffer (llm.c style). It computes only through a Backend and sums
// key norms over ranks only through a Reducer, so it knows no device or communication API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "model/group_allocator.h"
#include "model/model_config.h"
#include "model/param_layout.h"
#include "model/reducer.h"

namespace dgqa {

// Gives a backend allocation back to its backend: the owner of the model's parameters and
// gradients, so that a constructor that throws after allocating them leaks nothing.
struct BackendRelease {
  Backend* backend = nullptr;
  void operator()(float* pointer) const { backend->release(pointer); }
};

class VisionTransformer {
 public:
  // Buffers for activations are sized for up to max_batch images per forward pass. With
  // `recompute` (train.recompute BLOCK) the forward pass keeps only each block's input (and its
  // allocation and PGQA noise), and backward recomputes each block with the same kernels just
  // before its backward: the same results with one block's activations instead of all.
  VisionTransformer(const ModelConfig& config, Backend& backend, int max_batch, uint64_t seed,
                    bool recompute = false);
  ~VisionTransformer();
  VisionTransformer(const VisionTransformer&) = delete;
  VisionTransformer& operator=(const VisionTransformer&) = delete;

  const ModelConfig& config() const { return config_; }
  const ParamLayout& layout() const { return layout_; }
  int max_batch() const { return max_batch_; }

  // The flat parameter and gradient buffers (backend memory, layout() order).
  float* params() { return params_.get(); }
  float* grads() { return grads_.get(); }
  void zero_grads();

  // timm-style initialisation (truncated normal weights, zero biases, unit norms), drawn from
  // a counter-based generator keyed by `seed`: identical on every rank and every backend.
  void init_params(uint64_t seed);

  // Host copies of all parameters, and their replacement (layout() order).
  std::vector<float> params_to_host() const;
  void params_from_host(const std::vector<float>& values);

  // Runs the model on B images (host, (B, C, S, S), normalised) with their labels and returns
  // the sum of the B cross-entropy losses (label-smoothed by context.label_smoothing, against
  // the mixed targets of context.mix_labels and mix_weights when given). Training
  // passes drop paths with config().drop_path_rate. Key norms are summed with `reducer`. B may be 0
  // (a rank without examples in a last evaluation batch): it then only joins the key-norm sums.
  double forward(const float* images, const int32_t* labels, int B, const ForwardContext& context,
                 Reducer& reducer);

  // Called during backward with an offset f: grads()[f, end) hold their final values. f only
  // decreases (backward runs from the head to the patch embedding) and the last call has f = 0.
  using GradientsReady = std::function<void(int64_t first_ready)>;

  // Gradients of (loss_scale * sum of the last forward's losses), accumulated into grads().
  void backward(float loss_scale, const GradientsReady& on_ready = nullptr);

  // Host copy of the last forward's logits (B, num_classes).
  std::vector<float> logits_to_host() const;

  // The group allocator of each layer (DGQA state, allocations of the last forward).
  std::vector<GroupAllocator>& allocators() { return allocators_; }
  const std::vector<GroupAllocator>& allocators() const { return allocators_; }

 private:
  struct Buffers;
  using BackendFloats = std::unique_ptr<float, BackendRelease>;
  BackendFloats allocate_floats(int64_t count);

  float* param(int64_t offset) { return params_.get() + offset; }
  float* grad(int64_t offset) { return grads_.get() + offset; }
  void choose_allocation(int layer, const float* k, int B, const ForwardContext& context,
                         Reducer& reducer);
  // Block `layer` on B images. The forward pass gives its context and reducer: the layer's
  // allocation is chosen and its PGQA noise drawn. A recomputation gives null for both: it
  // reuses them and stops before the block's output, which backward does not read.
  void block_forward(int layer, int B, const ForwardContext* context, Reducer* reducer);
  void draw_drop_path(int B, const ForwardContext& context);
  // Drop path's per-image scales of a layer's branch (0 attention, 1 MLP) in the last forward.
  const float* drop_scales(int layer, int branch) const;

  ModelConfig config_;
  Backend& backend_;
  ParamLayout layout_;
  int max_batch_;
  uint64_t seed_;
  bool recompute_;
  BackendFloats params_;
  BackendFloats grads_;
  std::unique_ptr<Buffers> buffers_;  // after params_ and grads_: released before them
  std::vector<GroupAllocator> allocators_;
  int last_batch_ = 0;
  bool last_noise_ = false;      // whether the last forward applied PGQA noise
  float last_smoothing_ = 0.f;   // the last forward's label smoothing
  bool last_mixed_ = false;      // whether the last forward's targets were mixed
  bool last_drop_path_ = false;  // whether the last forward dropped paths
};

}  // namespace dgqa
