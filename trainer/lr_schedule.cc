#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace dgqa {

// timm's CosineLRScheduler cycles. timm finds the cycle of step s with a logarithm, which can
// round to the cycle before at an exact boundary; growing cycles are walked here instead (a
// number of them logarithmic in s), equal ones divided.
double LrSchedule::cosine_restarts(int64_t s) const {
  int64_t i = cycle_mul == 1 ? s / cycle_steps : 0;
  double start = static_cast<double>(i * cycle_steps), length = static_cast<double>(cycle_steps);
  while (s >= start + length) {
    start += length;
    length *= cycle_mul;
    ++i;
  }
  if (cycle_limit > 0 && i >= cycle_limit) return min_lr;
  const double peak = base_lr * std::pow(cycle_decay, static_cast<double>(i));
  return min_lr + 0.5 * (peak - min_lr) * (1 + std::cos(M_PI * (s - start) / length));
}

float LrSchedule::at(int64_t t) const {
  const double lr = base_lr;
  if (t < warmup_steps) {
    if (warmup_start_factor < 0.f) return static_cast<float>(lr * (t + 1) / warmup_steps);
    const double f = warmup_start_factor;
    return static_cast<float>(lr * (f + (1.0 - f) * t / warmup_steps));
  }
  const int64_t s = t - warmup_steps, n = total_steps - warmup_steps;
  switch (shape) {
    case ScheduleShape::kConstant:
      return base_lr;
    case ScheduleShape::kStep:
      return static_cast<float>(lr * std::pow(static_cast<double>(gamma), s / step_size));
    case ScheduleShape::kMultiStep: {
      const auto passed = std::upper_bound(milestones.begin(), milestones.end(), s);
      return static_cast<float>(lr *
                                std::pow(static_cast<double>(gamma), passed - milestones.begin()));
    }
    case ScheduleShape::kCosineRestarts:
      return static_cast<float>(cosine_restarts(s));
    case ScheduleShape::kLinear:
      if (n <= 0) return base_lr;
      return static_cast<float>(lr + (min_lr - lr) * s / n);
    case ScheduleShape::kCosine:
      break;
  }
  if (n <= 0) return base_lr;
  const double progress = static_cast<double>(s) / n;
  return static_cast<float>(min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace dgqa
