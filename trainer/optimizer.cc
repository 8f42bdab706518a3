#include "trainer/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace dgqa {
namespace {

bool excluded_from_decay(const TensorSlot& slot) {
  return slot.shape.size() == 1 || slot.name == "cls_token" || slot.name == "pos_embed";
}

// A double through all_gather's uint64_t and back, bit for bit.
uint64_t bits_of(double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

double double_of(uint64_t bits) {
  double value = 0;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
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
    : AdamW(backend, layout, settings, OptimizerShard{0, layout.total_size(), nullptr}) {}

AdamW::AdamW(Backend& backend, const ParamLayout& layout, const AdamWSettings& settings,
             const OptimizerShard& shard)
    : backend_(backend), layout_(layout), settings_(settings), shard_(shard) {
  if (shard.begin < 0 || shard.begin > shard.end || shard.end > layout.total_size()) {
    throw std::invalid_argument("AdamW: the shard [" + std::to_string(shard.begin) + ", " +
                                std::to_string(shard.end) + ") is not inside the buffer of " +
                                std::to_string(layout.total_size()) + " floats");
  }
  const size_t bytes = sizeof(float) * (shard.end - shard.begin);
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
  std::vector<float> host(shard_.end - shard_.begin);
  backend_.copy_to_host(host.data(), m_, host.size() * sizeof(float));
  return host;
}

std::vector<float> AdamW::second_moments_to_host() const {
  std::vector<float> host(shard_.end - shard_.begin);
  backend_.copy_to_host(host.data(), v_, host.size() * sizeof(float));
  return host;
}

void AdamW::restore(const std::vector<float>& first, const std::vector<float>& second,
                    int64_t steps) {
  const size_t size = shard_.end - shard_.begin;
  if (first.size() != size || second.size() != size) {
    throw std::logic_error("AdamW::restore: moments of " + std::to_string(first.size()) + " and " +
                           std::to_string(second.size()) + " floats for a shard of " +
                           std::to_string(size));
  }
  backend_.copy_to_device(m_, first.data(), first.size() * sizeof(float));
  backend_.copy_to_device(v_, second.data(), second.size() * sizeof(float));
  steps_ = steps;
}

double AdamW::sum_squares(const float* grads) const {
  const double mine = backend_.sum_squares(grads + shard_.begin, shard_.end - shard_.begin);
  if (shard_.comm == nullptr) return mine;
  // Every rank adds the shards' sums in rank order, so every rank gets the same norm.
  const std::vector<uint64_t> sums =
      shard_.comm->all_gather(bits_of(mine), "gradient norm all-gather");
  double total = 0;
  for (const uint64_t sum : sums) total += double_of(sum);
  return total;
}

void AdamW::update(float* params, float* grads, int64_t begin, int64_t end, float lr,
                   float weight_decay) {
  const int64_t first = std::max(begin, shard_.begin);
  const int64_t last = std::min(end, shard_.end);
  if (first >= last) return;
  const AdamWSettings& s = settings_;
  const int64_t moment = first - shard_.begin;
  backend_.adamw_update(params + first, grads + first, m_ + moment, v_ + moment, last - first, lr,
                        s.beta1, s.beta2, s.eps, weight_decay, steps_);
}

float AdamW::step(float* params, float* grads, float lr) {
  const float norm = static_cast<float>(std::sqrt(sum_squares(grads)));
  if (settings_.grad_clip > 0.f) {
    // torch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1
    const float clip = settings_.grad_clip / (norm + 1e-6f);
    if (clip < 1.f) {
      backend_.scale_inplace(grads + shard_.begin, clip, shard_.end - shard_.begin);
    }
  }
  ++steps_;
  if (rules_.empty()) {
    update(params, grads, shard_.begin, shard_.end, lr, settings_.weight_decay);
    return norm;
  }
  for (size_t i = 0; i < rules_.size(); ++i) {
    const TensorSlot& slot = layout_.tensors()[i];
    const float tensor_lr = static_cast<float>(lr * rules_[i].lr_scale);
    update(params, grads, slot.offset, slot.offset + slot.size, tensor_lr, rules_[i].weight_decay);
  }
  return norm;
}

}  // namespace dgqa
