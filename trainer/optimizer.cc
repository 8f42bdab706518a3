#include "trainer/optimizer.h"

#include <cmath>

namespace dgqa {
namespace {

bool excluded_from_decay(const TensorSlot& slot) {
  return slot.shape.size() == 1 || slot.name == "cls_token" || slot.name == "pos_embed";
}

}  // namespace

AdamW::AdamW(Backend& backend, const ParamLayout& layout, const AdamWSettings& settings)
    : backend_(backend), layout_(layout), settings_(settings) {
  const size_t bytes = sizeof(float) * layout.total_size();
  m_ = static_cast<float*>(backend_.allocate(bytes));
  v_ = static_cast<float*>(backend_.allocate(bytes));
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
  if (!s.no_decay_1d) {
    backend_.adamw_update(params, grads, m_, v_, n, lr, s.beta1, s.beta2, s.eps, s.weight_decay,
                          steps_);
    return norm;
  }
  for (const TensorSlot& slot : layout_.tensors()) {
    const float decay = excluded_from_decay(slot) ? 0.f : s.weight_decay;
    const int64_t o = slot.offset;
    backend_.adamw_update(params + o, grads + o, m_ + o, v_ + o, slot.size, lr, s.beta1, s.beta2,
                          s.eps, decay, steps_);
  }
  return norm;
}

}  // namespace dgqa
