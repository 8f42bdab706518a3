// One optimizer step of data-parallel training, the same for `dgqa train` and `dgqa bench`:
// zero the gradients; Mixup/CutMix of the batch when the config's mixup section is on
// (trainer/batch_mixer.h); per micro-batch (train.micro_batch_size) a forward (key norms summed
// over the ranks inside it) and a backward accumulating into the gradients; the loss summed over
// the ranks before the last backward, whose gradient buckets are summed as they complete; AdamW at
// the schedule's rate (under ZeRO-1 on this rank's shard, then the shards gathered), then the
// weight EMA when train.ema_decay is set (docs/design.md §3.6, §5). The optimizer settings and
// the schedule come from the config here and nowhere else.
#pragma once

#include <cstdint>
#include <memory>

#include "comm/communicator.h"
#include "data/batch.h"
#include "kernels/backend.h"
#include "model/vit.h"
#include "trainer/batch_mixer.h"
#include "trainer/config.h"
#include "trainer/gradient_sync.h"
#include "trainer/key_norm_reducer.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizer.h"
#include "trainer/weight_ema.h"

namespace dgqa {

// Wall-clock seconds by phase of a step (bench). Each phase ends with the backend synchronised,
// so that it is charged for its own device work.
struct PhaseTimes {
  double data = 0, forward = 0, backward = 0, communication = 0, optimizer = 0;
  double total() const { return data + forward + backward + communication + optimizer; }
};

struct StepResult {
  double loss = 0;         // mean over the global batch
  float grad_norm = 0;     // global L2 norm of the gradients, before clipping
  float lr = 0;            // the learning rate the step used
  double sync_wait_s = 0;  // waiting for gradient sums after backward (not hidden by it)
  // This rank's images of the step whose first largest logit is the label (with mixup, the label
  // of weight >= 1/2), and its images replaced because they could not be read (data.bad_image:
  // SKIP).
  int64_t correct_top1 = 0, replaced_images = 0;
};

// AdamW as the config's optimizer section sets it up.
AdamWSettings adamw_settings_from(const config::Config& config);

// The learning rate of every step of a run of total_steps steps, from the config's schedule.
LrSchedule lr_schedule_from(const config::Config& config, int64_t total_steps);

class TrainingStep {
 public:
  // Trains `model`, whose buffers live in `backend`, on this rank's share of global batches of
  // train.global_batch_size images, for a run of total_steps steps (the schedule's length).
  TrainingStep(const config::Config& config, VisionTransformer& model, Backend& backend,
               Communicator& comm, int64_t total_steps);

  // Optimizer step `step` (0-based over the whole run; PGQA noise and the DGQA window count it),
  // the `epoch_step`-th of its epoch (DGQA's window with model.dgqa_window_counter EPOCH_STEP),
  // on this rank's part of the global batch, in consecutive micro-batches. Throws
  // std::runtime_error if the loss or the gradient norm is not finite. With `times`, adds each
  // phase's time to it (the data phase is the caller's, plus the mixup's).
  StepResult run(const Batch& batch, int64_t step, int64_t epoch_step, PhaseTimes* times = nullptr);

  AdamW& optimizer() { return optimizer_; }
  WeightEma* weight_ema() { return weight_ema_.get(); }  // null when train.ema_decay is 0
  GradientSync& gradient_sync() { return gradient_sync_; }
  KeyNormReducer& key_norm_reducer() { return key_norm_reducer_; }

 private:
  // The forward context of micro-batch i of step `step` (the mixed targets of its images when
  // mixup is on, after BatchMixer::mix).
  ForwardContext micro_batch_context(int i, int64_t step, int64_t epoch_step) const;
  // The mean loss of the global batch from this rank's loss sum; throws if it is not finite.
  double global_loss(double local_loss, int64_t step);

  VisionTransformer& model_;
  Backend& backend_;
  Communicator& comm_;
  const int global_batch_;
  const int micro_batch_;  // images per forward pass
  const float label_smoothing_;
  const LrSchedule schedule_;
  BatchMixer mixer_;
  GradientSync gradient_sync_;
  AdamW optimizer_;  // after gradient_sync_, whose ZeRO-1 shard it updates
  std::unique_ptr<WeightEma> weight_ema_;
  KeyNormReducer key_norm_reducer_;  // after gradient_sync_, whose NCCL sum it may share
};

}  // namespace dgqa
