// Where each named parameter tensor lives in the model's flat fp32 buffer (docs/design.md §4).
// Gradients, AdamW moments and checkpoints all use the same layout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace dgqa {

struct TensorSlot {
  std::string name;            // e.g. "blocks.3.attn.k.weight"
  std::vector<int64_t> shape;  // PyTorch shape
  int64_t offset = 0;          // in floats, from the start of the flat buffer
  int64_t size = 0;            // product of shape
};

// Offsets of one transformer block's tensors.
struct BlockSlots {
  int64_t norm1_w, norm1_b, q_w, q_b, k_w, k_b, v_w, v_b, proj_w, proj_b;
  int64_t norm2_w, norm2_b, fc1_w, fc1_b, fc2_w, fc2_b;
};

class ParamLayout {
 public:
  explicit ParamLayout(const ModelConfig& config);

  // Tensors in forward order (patch embedding first, head last); backward produces their
  // gradients roughly in reverse order.
  const std::vector<TensorSlot>& tensors() const { return tensors_; }
  int64_t total_size() const { return total_size_; }
  // The slot of `name`, or nullptr.
  const TensorSlot* find(const std::string& name) const;

  int64_t patch_w, patch_b, cls_token, pos_embed, norm_w, norm_b, head_w, head_b;
  std::vector<BlockSlots> blocks;

 private:
  int64_t add(const std::string& name, std::vector<int64_t> shape);

  std::vector<TensorSlot> tensors_;
  int64_t total_size_ = 0;
};

}  // namespace dgqa
