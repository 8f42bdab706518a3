#include "trainer/weight_ema.h"

#include <algorithm>
#include <cmath>

namespace dgqa {

WeightEma::WeightEma(Backend& backend, const ParamLayout& layout, float decay, bool warmup)
    : backend_(backend), layout_(layout), decay_(decay), warmup_(warmup) {
  ema_ = static_cast<float*>(backend_.allocate(sizeof(float) * layout.total_size()));
}

WeightEma::~WeightEma() {
  backend_.release(ema_);
}

double WeightEma::decay_at(int64_t updates) const {
  const int64_t s = updates - 1;
  if (s <= 0) return 0;
  if (!warmup_) return decay_;
  return std::min(decay_, 1 - std::pow(1.0 + static_cast<double>(s), -2.0 / 3.0));
}

void WeightEma::update(const float* params, int64_t updates) {
  const float weight = static_cast<float>(1 - decay_at(updates));
  backend_.weight_ema_update(ema_, params, layout_.total_size(), weight);
}

std::vector<float> WeightEma::to_host() const {
  std::vector<float> host(layout_.total_size());
  backend_.copy_to_host(host.data(), ema_, host.size() * sizeof(float));
  return host;
}

void WeightEma::from_host(const std::vector<float>& values) {
  backend_.copy_to_device(ema_, values.data(), values.size() * sizeof(float));
}

}  // namespace dgqa
