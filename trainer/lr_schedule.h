// The learning rate of each optimizer step (docs/design.md §3.6).
#pragma once

#include <cstdint>

namespace dgqa {

enum class ScheduleShape { kConstant, kCosine };

struct LrSchedule {
  float base_lr = 1e-3f;
  float min_lr = 0.f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  ScheduleShape shape = ScheduleShape::kCosine;

  // The rate of step t (0-based): linear warmup lr*(t+1)/warmup, then constant or cosine decay
  // from lr to min_lr over the remaining total_steps - warmup steps.
  float at(int64_t t) const;
};

}  // namespace dgqa
