#include "model/param_layout.h"

namespace dgqa {

ParamLayout::ParamLayout(const ModelConfig& c) {
  const int64_t D = c.embed_dim, F = c.mlp_dim(), p = c.patch_size;
  const int64_t kv_dim = static_cast<int64_t>(c.num_kv_heads) * c.head_dim();
  patch_w = add("patch_embed.proj.weight", {D, c.in_channels, p, p});
  patch_b = add("patch_embed.proj.bias", {D});
  cls_token = add("cls_token", {1, 1, D});
  pos_embed = add("pos_embed", {1, c.num_tokens(), D});
  for (int i = 0; i < c.depth; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    BlockSlots s;
    s.norm1_w = add(b + "norm1.weight", {D});
    s.norm1_b = add(b + "norm1.bias", {D});
    s.q_w = add(b + "attn.q.weight", {D, D});
    s.q_b = add(b + "attn.q.bias", {D});
    s.k_w = add(b + "attn.k.weight", {kv_dim, D});
    s.k_b = add(b + "attn.k.bias", {kv_dim});
    s.v_w = add(b + "attn.v.weight", {kv_dim, D});
    s.v_b = add(b + "attn.v.bias", {kv_dim});
    s.proj_w = add(b + "attn.proj.weight", {D, D});
    s.proj_b = add(b + "attn.proj.bias", {D});
    s.norm2_w = add(b + "norm2.weight", {D});
    s.norm2_b = add(b + "norm2.bias", {D});
    s.fc1_w = add(b + "mlp.fc1.weight", {F, D});
    s.fc1_b = add(b + "mlp.fc1.bias", {F});
    s.fc2_w = add(b + "mlp.fc2.weight", {D, F});
    s.fc2_b = add(b + "mlp.fc2.bias", {D});
    blocks.push_back(s);
  }
  norm_w = add("norm.weight", {D});
  norm_b = add("norm.bias", {D});
  head_w = add("head.weight", {c.num_classes, D});
  head_b = add("head.bias", {c.num_classes});
}

int64_t ParamLayout::add(const std::string& name, std::vector<int64_t> shape) {
  TensorSlot slot;
  slot.name = name;
  slot.size = 1;
  for (int64_t extent : shape) slot.size *= extent;
  slot.shape = std::move(shape);
  // Keep every tensor 16-float aligned so vectorised kernels see aligned rows.
  slot.offset = (total_size_ + 15) / 16 * 16;
  total_size_ = slot.offset + slot.size;
  tensors_.push_back(slot);
  return slot.offset;
}

const TensorSlot* ParamLayout::find(const std::string& name) const {
  for (const TensorSlot& slot : tensors_) {
    if (slot.name == name) return &slot;
  }
  return nullptr;
}

}  // namespace dgqa
