#include "trainer/optimizer.h"

#include <cmath>

namespace dgqa {
namespace {

bool excluded_from_decay(const TensorSlot& slot) {
  return slot.shape.size() == 1 || slot.name == "cls_token" || slot.name == "pos_embed";
}

}  // namespace

int lr_decay_layer(const std::string& tensor_name, int depth) {
  if (tensor_name.rfind("patch_embed.", 0) == 0 || tensor_name == "cls_token" ||
      tensor_name == "pos_embed") {
    return 0;
  }
  if (tensor_name.rfind("blocks.", 0) == 0) return std::stoi(tensor_name.substr(7)) + 1;
  if (tensor_name.rfind("norm.", 0) == 0) return depth;  // timm groups it with the last block
  return depth + 1;
}

AdamW::AdamW(Backend& backend, const ParamLayout& layout, const AdamWSettings& settings)
    : backend_(backend), layout_(layout), settings_(settings) {
  const size_t bytes = sizeof(float) * layout.total_size();
  m_ = static_cast<float*>(backend_.allocate(bytes));
  v_ = static_cast<float*>(backend_.allocate(bytes));
  if (!settings.no_decay_1d && settings.layer_decay == 1.f) return;
  const int depth = static_cast<int>(layout.blocks.size());
  for (const TensorSlot& slot : layout.tensors()) {
    const int layer = lr_decay_layer(slot.name, depth);
    const float decay =
        settings.no_decay_1d && excluded_from_decay(slot) ? 0.f : settings.weight_decay;
    rules_.push_back(
        {std::pow(static_cast<double>(settings.layer_decay), depth + 1 - layer), decay});
  }
}

AdamW::~AdamW() {
  backend_.release(m_);
  backend_.release(v_);
}

std::vector<float> AdamW::first_moments_to_host() const {
  std::vector<float> host(layout_.total_size());
  backend_.copy_to_host(host.data(), m_, host.size() * sizeof(float));
  return host;
}

std::vector<float> AdamW::second_moments_to_host() const {
  std::vector<float> host(layout_.total_size());
  backend_.copy_to_host(host.data(), v_, host.size() * sizeof(float));
  return host;
}

void AdamW::restore(const std::vector<float>& first, const std::vector<float>& second,
                    int64_t steps) {
  backend_.copy_to_device(m_, first.data(), first.size() * sizeof(float));
  backend_.copy_to_device(v_, second.data(), second.size() * sizeof(float));
  steps_ = steps;
}

float AdamW::step(float* params, float* grads, float lr) {
  const int64_t n = layout_.total_size();
  const float norm = static_cast<float>(std::sqrt(backend_.sum_squares(grads, n)));
  if (settings_.grad_clip > 0.f) {
    // torch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1
    const float clip = settings_.grad_clip / (norm + 1e-6f);
    if (clip < 1.f) backend_.scale_inplace(grads, clip, n);
  }
  ++steps_;
  const AdamWSettings& s = settings_;
  if (rules_.empty()) {
    backend_.adamw_update(params, grads, m_, v_, n, lr, s.beta1, s.beta2, s.eps, s.weight_decay,
                          steps_);
    return norm;
  }
  for (size_t i = 0; i < rules_.size(); ++i) {
    const TensorSlot& slot = layout_.tensors()[i];
    const float tensor_lr = static_cast<float>(lr * rules_[i].lr_scale);
    const int64_t o = slot.offset;
    backend_.adamw_update(params + o, grads + o, m_ + o, v_ + o, slot.size, tensor_lr, s.beta1,
                          s.beta2, s.eps, rules_[i].weight_decay, steps_);
  }
  return norm;
}

}  // namespace dgqa
