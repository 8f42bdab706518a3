#include "trainer/lr_schedule.h"

#include <cmath>

namespace dgqa {

float LrSchedule::at(int64_t t) const {
  if (t < warmup_steps) {
    return static_cast<float>(static_cast<double>(base_lr) * (t + 1) / warmup_steps);
  }
  if (shape == ScheduleShape::kConstant) return base_lr;
  const int64_t decay_steps = total_steps - warmup_steps;
  if (decay_steps <= 0) return base_lr;
  const double progress = static_cast<double>(t - warmup_steps) / decay_steps;
  return static_cast<float>(min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace dgqa
