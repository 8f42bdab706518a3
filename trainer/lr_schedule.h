// The learning rate of each optimizer step (docs/design.md §3.6).
#pragma once

#include <cstdint>
#include <vector>

namespace dgqa {

enum class ScheduleShape { kConstant, kCosine, kLinear, kStep, kMultiStep, kCosineRestarts };

struct LrSchedule {
  float base_lr = 1e-3f;
  float min_lr = 0.f;
  int64_t warmup_steps = 0;
  // < 0: warm-up lr*(t+1)/warmup. Else torch's LinearLR(start_factor): lr*(f + (1-f)*t/warmup).
  float warmup_start_factor = -1.f;
  int64_t total_steps = 1;
  ScheduleShape shape = ScheduleShape::kCosine;
  int64_t step_size = 1;            // kStep: decay by gamma every step_size steps
  float gamma = 0.1f;               // kStep, kMultiStep
  std::vector<int64_t> milestones;  // kMultiStep: increasing, in steps after the warm-up
  // kCosineRestarts (timm's CosineLRScheduler cycles): cycle i lasts cycle_steps * cycle_mul^i
  // steps and starts from lr * cycle_decay^i; from cycle cycle_limit on (0 = never) it is min_lr.
  int64_t cycle_steps = 1;
  double cycle_mul = 1, cycle_decay = 1;
  int64_t cycle_limit = 0;

  // The rate of step t (0-based): the warm-up, then with s = t - warmup steps after it and
  // n = total_steps - warmup of them, as torch's schedulers started at the warm-up's end:
  // CONSTANT lr; COSINE from lr to min_lr over n; LINEAR from lr to min_lr over n (LinearLR);
  // STEP lr*gamma^floor(s/step_size) (StepLR); MULTI_STEP lr*gamma^(milestones <= s)
  // (MultiStepLR); COSINE_RESTARTS a cosine from its cycle's peak to min_lr over each cycle.
  float at(int64_t t) const;

 private:
  double cosine_restarts(int64_t s) const;
};

}  // namespace dgqa
