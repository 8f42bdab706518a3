// An exponential moving average of the weights (train.ema_decay; docs/design.md §3.6), as timm's
// ModelEmaV3 keeps it: fp32, a flat buffer in backend memory in the model's layout order,
// updated after every optimizer step from the weights that step produced.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.h"
#include "model/param_layout.h"

namespace dgqa {

class WeightEma {
 public:
  // decay in [0, 1); warmup: timm's use_warmup (warmup_gamma 1, warmup_power 2/3).
  WeightEma(Backend& backend, const ParamLayout& layout, float decay, bool warmup);
  ~WeightEma();
  WeightEma(const WeightEma&) = delete;
  WeightEma& operator=(const WeightEma&) = delete;

  // The decay of the update after optimizer step `updates` (1-based: timm's num_updates):
  // 0 at the first (the average starts as a copy of the weights), then with s = updates - 1:
  // warmup ? min(decay, 1 - (1 + s)^(-2/3)) : decay. In double.
  double decay_at(int64_t updates) const;

  // ema = lerp(ema, params, 1 - decay_at(updates)) (kernels/cpu/weight_ema.h) over the whole
  // buffer; params in backend memory.
  void update(const float* params, int64_t updates);

  // The average (layout order) on the host, and its replacement (checkpoints; a fresh start
  // sets it to the starting weights).
  std::vector<float> to_host() const;
  void from_host(const std::vector<float>& values);

 private:
  Backend& backend_;
  const ParamLayout& layout_;
  const double decay_;
  const bool warmup_;
  float* ema_ = nullptr;
};

}  // namespace dgqa
