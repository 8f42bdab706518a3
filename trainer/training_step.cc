#include "trainer/training_step.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "common/stopwatch.h"
#include "trainer/evaluate.h"
#include "trainer/run_setup.h"

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

// This rank's part of the optimizer: the shard whose gradient sums GradientSync gives it (all
// of the buffer without ZeRO-1).
OptimizerShard optimizer_shard(const GradientSync& sync, Communicator& comm) {
  const std::vector<int64_t>& bounds = sync.shard_bounds();
  if (bounds.size() == 2) return {bounds[0], bounds[1], nullptr};
  return {bounds[comm.rank()], bounds[comm.rank() + 1], &comm};
}

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
      micro_batch_(training_micro_batch(config, comm.world_size())),
      label_smoothing_(config.optimizer().label_smoothing()),
      schedule_(lr_schedule_from(config, total_steps)),
      mixer_(config, comm),
      gradient_sync_(comm, backend, model.grads(), model.layout().total_size(),
                     gradient_sync_options(config, comm.world_size())),
      optimizer_(backend, model.layout(), adamw_settings_from(config),
                 optimizer_shard(gradient_sync_, comm)),
      key_norm_reducer_(comm, gradient_sync_options(config, comm.world_size()),
                        gradient_sync_.nccl_sum(), "key-norm all-reduce") {
  if (config.train().ema_decay() > 0) {
    weight_ema_ = std::make_unique<WeightEma>(backend, model.layout(), config.train().ema_decay(),
                                              config.train().ema_warmup());
  }
}

StepResult TrainingStep::run(const Batch& batch, int64_t step, int64_t epoch_step,
                             PhaseTimes* times) {
  if (batch.size % micro_batch_ != 0) {
    throw std::logic_error("a training batch of " + std::to_string(batch.size) +
                           " images is not whole micro-batches of " + std::to_string(micro_batch_));
  }
  PhaseClock clock(backend_, times);
  const ModelConfig& c = model_.config();
  const int64_t image_floats = int64_t{c.in_channels} * c.image_size * c.image_size;
  const int micro_batches = batch.size / micro_batch_;
  const VisionTransformer::GradientsReady sync = [&](int64_t first) {
    gradient_sync_.ready(first);
  };
  StepResult result;
  result.replaced_images = std::count(batch.replaced.begin(), batch.replaced.end(), 1);
  if (mixer_.enabled()) mixer_.mix(batch, step);
  clock.charge(&PhaseTimes::data);
  const float* images = mixer_.enabled() ? mixer_.images() : batch.images.data();
  // Training top-1 counts the dominant label of a mixed image.
  const int32_t* top1_labels = mixer_.enabled() ? mixer_.dominant_labels() : batch.labels.data();
  model_.zero_grads();
  double local_loss = 0;
  for (int i = 0; i < micro_batches; ++i) {
    const int first = i * micro_batch_;
    const int32_t* labels = batch.labels.data() + first;
    local_loss += model_.forward(images + first * image_floats, labels, micro_batch_,
                                 micro_batch_context(i, step, epoch_step), key_norm_reducer_);
    clock.charge(&PhaseTimes::forward);
    result.correct_top1 += count_top_k(model_.logits_to_host().data(), top1_labels + first,
                                       micro_batch_, c.num_classes, 1);
    const bool last = i == micro_batches - 1;
    if (last) result.loss = global_loss(local_loss, step);
    // Each rank's gradient of (its losses / global batch), accumulated over its micro-batches;
    // the sum over the ranks is the global mean's. Only the last backward starts the sums.
    model_.backward(1.f / global_batch_, last ? sync : VisionTransformer::GradientsReady());
    clock.charge(&PhaseTimes::backward);
  }
  result.sync_wait_s = gradient_sync_.finish();
  clock.charge(&PhaseTimes::communication);
  result.lr = schedule_.at(step);
  result.grad_norm = optimizer_.step(model_.params(), model_.grads(), result.lr);
  gradient_sync_.gather_parameters(model_.params());
  if (weight_ema_) weight_ema_->update(model_.params(), step + 1);
  clock.charge(&PhaseTimes::optimizer);
  if (!std::isfinite(result.grad_norm)) {  // the global norm: every rank stops here
    throw std::runtime_error("the training diverged at step " + std::to_string(step + 1) +
                             ": the gradient norm is not finite");
  }
  return result;
}

ForwardContext TrainingStep::micro_batch_context(int i, int64_t step, int64_t epoch_step) const {
  const int first = i * micro_batch_;
  ForwardContext context;
  context.training = true;
  context.step = step;
  context.micro_batch = i;
  context.epoch_step = epoch_step;
  context.label_smoothing = label_smoothing_;
  // Image k of this micro-batch is image first + k of the rank's share, which the strided deal
  // of docs/design.md §5.5 gives the global place rank + (first + k) * world.
  context.sample_first = comm_.rank() + int64_t{first} * comm_.world_size();
  context.sample_stride = comm_.world_size();
  if (mixer_.enabled()) {
    context.mix_labels = mixer_.mix_labels() + first;
    context.mix_weights = mixer_.mix_weights() + first;
  }
  return context;
}

double TrainingStep::global_loss(double local_loss, int64_t step) {
  float loss_sum = static_cast<float>(local_loss);
  comm_.all_reduce_sum(&loss_sum, 1, "loss all-reduce");
  if (!std::isfinite(loss_sum)) {
    throw std::runtime_error("the training diverged at step " + std::to_string(step + 1) +
                             ": the loss is not finite");
  }
  return static_cast<double>(loss_sum) / global_batch_;
}

}  // namespace dgqa
