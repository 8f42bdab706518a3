#include "trainer/training_step.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "common/stopwatch.h"
#include "trainer/evaluate.h"

namespace dgqa {
namespace {

// Charges the time since the previous charge to a phase, after the backend's queued work; does
// nothing without PhaseTimes (training is not slowed by synchronising).
class PhaseClock {
 public:
  PhaseClock(Backend& backend, PhaseTimes* times) : backend_(backend), times_(times) {}
  void charge(double PhaseTimes::*phase) {
    if (times_ == nullptr) return;
    backend_.synchronize();
    times_->*phase += stopwatch_.lap();
  }

 private:
  Backend& backend_;
  PhaseTimes* times_;
  Stopwatch stopwatch_;
};

}  // namespace

AdamWSettings adamw_settings_from(const config::Config& config) {
  const config::Optimizer& o = config.optimizer();
  AdamWSettings settings;
  settings.beta1 = o.beta1();
  settings.beta2 = o.beta2();
  settings.eps = o.eps();
  settings.weight_decay = o.weight_decay();
  settings.grad_clip = o.grad_clip();
  settings.no_decay_1d = o.no_decay_1d();
  settings.layer_decay = o.layer_decay();
  return settings;
}

LrSchedule lr_schedule_from(const config::Config& config, int64_t total_steps) {
  LrSchedule schedule;
  schedule.base_lr = config.optimizer().lr();
  schedule.min_lr = config.schedule().min_lr();
  schedule.warmup_steps = config.schedule().warmup_steps();
  schedule.total_steps = total_steps;
  const config::Schedule& s = config.schedule();
  switch (s.kind()) {
    case config::CONSTANT:
      schedule.shape = ScheduleShape::kConstant;
      break;
    case config::COSINE:
      schedule.shape = ScheduleShape::kCosine;
      break;
    case config::LINEAR:
      schedule.shape = ScheduleShape::kLinear;
      break;
    case config::STEP:
      schedule.shape = ScheduleShape::kStep;
      break;
    case config::MULTI_STEP:
      schedule.shape = ScheduleShape::kMultiStep;
      break;
    case config::COSINE_RESTARTS:
      schedule.shape = ScheduleShape::kCosineRestarts;
      break;
  }
  if (s.has_warmup_start_factor()) schedule.warmup_start_factor = s.warmup_start_factor();
  schedule.step_size = s.step_size();
  schedule.gamma = s.gamma();
  schedule.milestones.assign(s.milestones().begin(), s.milestones().end());
  schedule.cycle_steps = s.cycle_steps();
  schedule.cycle_mul = s.cycle_mul();
  schedule.cycle_decay = s.cycle_decay();
  schedule.cycle_limit = s.cycle_limit();
  return schedule;
}

TrainingStep::TrainingStep(const config::Config& config, VisionTransformer& model, Backend& backend,
                           Communicator& comm, int64_t total_steps)
    : model_(model),
      backend_(backend),
      comm_(comm),
      global_batch_(config.train().global_batch_size()),
      label_smoothing_(config.optimizer().label_smoothing()),
      schedule_(lr_schedule_from(config, total_steps)),
      optimizer_(backend, model.layout(), adamw_settings_from(config)),
      gradient_sync_(comm, backend, model.grads(), model.layout().total_size(),
                     gradient_sync_options(config, comm.world_size())),
      key_norm_reducer_(comm, gradient_sync_options(config, comm.world_size()),
                        gradient_sync_.nccl_sum(), "key-norm all-reduce") {
  if (config.train().ema_decay() > 0) {
    weight_ema_ = std::make_unique<WeightEma>(backend, model.layout(), config.train().ema_decay(),
                                              config.train().ema_warmup());
  }
}

StepResult TrainingStep::run(const Batch& batch, int64_t step, int64_t epoch_step,
                             PhaseTimes* times) {
  PhaseClock clock(backend_, times);
  ForwardContext context;
  context.training = true;
  context.step = step;
  context.epoch_step = epoch_step;
  context.label_smoothing = label_smoothing_;
  context.sample_first = comm_.rank();  // the strided deal of docs/design.md §5.5
  context.sample_stride = comm_.world_size();
  model_.zero_grads();
  float loss_sum = static_cast<float>(model_.forward(batch.images.data(), batch.labels.data(),
                                                     batch.size, context, key_norm_reducer_));
  clock.charge(&PhaseTimes::forward);
  StepResult result;
  result.correct_top1 = count_top_k(model_.logits_to_host().data(), batch.labels.data(), batch.size,
                                    model_.config().num_classes, 1);
  result.replaced_images = std::count(batch.replaced.begin(), batch.replaced.end(), 1);
  comm_.all_reduce_sum(&loss_sum, 1, "loss all-reduce");
  if (!std::isfinite(loss_sum)) {
    throw std::runtime_error("the training diverged at step " + std::to_string(step + 1) +
                             ": the loss is not finite");
  }
  // Each rank's gradient of (its losses / global batch); their sum is the global mean's.
  model_.backward(1.f / global_batch_, [&](int64_t first) { gradient_sync_.ready(first); });
  clock.charge(&PhaseTimes::backward);
  result.sync_wait_s = gradient_sync_.finish();
  clock.charge(&PhaseTimes::communication);
  result.lr = schedule_.at(step);
  result.grad_norm = optimizer_.step(model_.params(), model_.grads(), result.lr);
  if (weight_ema_) weight_ema_->update(model_.params(), step + 1);
  clock.charge(&PhaseTimes::optimizer);
  if (!std::isfinite(result.grad_norm)) {  // the global norm: every rank stops here
    throw std::runtime_error("the training diverged at step " + std::to_string(step + 1) +
                             ": the gradient norm is not finite");
  }
  result.loss = static_cast<double>(loss_sum) / global_batch_;
  return result;
}

}  // namespace dgqa
