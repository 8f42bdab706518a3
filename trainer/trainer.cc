#include "trainer/trainer.h"

#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>

#include "common/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/threads.h"
#include "model/vit.h"
#include "trainer/checkpoint.h"
#include "trainer/comm_reducer.h"
#include "trainer/datasets.h"
#include "trainer/evaluate.h"
#include "trainer/gradient_sync.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics.h"
#include "trainer/optimizer.h"
#include "trainer/preemption.h"
#include "trainer/replicas.h"
#include "io/weights.h"

namespace dgqa {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

LrSchedule schedule_from(const config::Config& config, int64_t total_steps) {
  LrSchedule schedule;
  schedule.base_lr = config.optimizer().lr();
  schedule.min_lr = config.schedule().min_lr();
  schedule.warmup_steps = config.schedule().warmup_steps();
  schedule.total_steps = total_steps;
  schedule.shape = config.schedule().kind() == config::CONSTANT ? ScheduleShape::kConstant
                                                                : ScheduleShape::kCosine;
  return schedule;
}

AdamWSettings adamw_from(const config::Config& config) {
  const config::Optimizer& o = config.optimizer();
  AdamWSettings settings;
  settings.beta1 = o.beta1();
  settings.beta2 = o.beta2();
  settings.eps = o.eps();
  settings.weight_decay = o.weight_decay();
  settings.grad_clip = o.grad_clip();
  settings.no_decay_1d = o.no_decay_1d();
  return settings;
}

std::vector<std::vector<int>> active_allocations(const VisionTransformer& model) {
  std::vector<std::vector<int>> layers;
  for (const GroupAllocator& allocator : model.allocators()) {
    layers.push_back(allocator.active_allocation());
  }
  return layers;
}

// The metrics file of rank 0 (other ranks write none); creates the output directory.
std::string metrics_path(const std::string& out_dir, int rank) {
  if (out_dir.empty() || rank != 0) return "";
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error) throw InputError("--out " + out_dir + ": " + error.message());
  return out_dir + "/metrics.jsonl";
}

// Restores the checkpoint --resume names, if any, and returns the step to continue from.
// Without a checkpoint, --init-from (if given) provides the starting weights.
int64_t resume(const TrainOptions& options, const config::Config& config, int rank, int world,
               VisionTransformer& model, AdamW& optimizer) {
  std::optional<Checkpoint> checkpoint;
  if (options.resume == "auto") {
    checkpoint = find_checkpoint_to_resume(options.out_dir, config);
    if (!checkpoint) LOG(INFO) << "No checkpoint under " << options.out_dir << ": a fresh start";
  } else if (!options.resume.empty()) {
    checkpoint = open_checkpoint(options.resume, config);
  }
  if (!checkpoint) {
    if (!options.init_from.empty()) {
      load_weights(model, options.init_from, OtherHead::kReinitialise);
      LOG(INFO) << "Initialised the weights from " << options.init_from;
    }
    return 0;
  }
  restore_checkpoint(*checkpoint, model, optimizer);
  const checkpoint::State& state = checkpoint->state;
  LOG(INFO) << "Resuming from " << checkpoint->dir << " after step " << state.step();
  if (state.world_size() != world) {
    LOG(WARNING) << "The checkpoint was written by " << state.world_size() << " rank(s), this run "
                 << "has " << world << ": the data order continues, but the results will not be "
                 << "bit-identical to an uninterrupted run (sums are taken in another order)";
  }
  if (!options.out_dir.empty() && rank == 0) {
    truncate_metrics_after(options.out_dir + "/metrics.jsonl", state.step());
  }
  return state.step();
}

}  // namespace

void run_training(const config::Config& config, const TrainOptions& options, Communicator& comm) {
  const ModelConfig model_config = model_config_from(config);
  const config::Train& train = config.train();
  const int threads = cpu::set_threads(train.threads());
  const int rank = comm.rank(), world = comm.world_size();

  // Everything that can be wrong with the input is checked before the first step.
  const Dataset train_set = load_dataset(config, model_config, /*train=*/true);
  const Dataset test_set = load_dataset(config, model_config, /*train=*/false);
  BatchLoader train_loader(train_set, loader_options(config, model_config, true, rank, world));
  BatchLoader test_loader(test_set, loader_options(config, model_config, false, rank, world));

  std::unique_ptr<Backend> backend =
      make_backend(backend_options_from(config, comm.info().local_rank));
  const int global_batch = train.global_batch_size();
  const int eval_batch = std::min<int>(train.eval_batch_size(), test_set.num_examples);
  const int max_batch = std::max(global_batch / world, (eval_batch + world - 1) / world);
  VisionTransformer model(model_config, *backend, max_batch, config.seed());
  AdamW optimizer(*backend, model.layout(), adamw_from(config));
  const int64_t steps_per_epoch = train_loader.batches_per_epoch();
  const int64_t total_steps =
      train.max_steps() > 0 ? train.max_steps() : train.epochs() * steps_per_epoch;
  int64_t step = resume(options, config, rank, world, model, optimizer);
  // Every rank starts from rank 0's weights (they already agree: same seed or same file).
  broadcast_params(model, comm);
  if (config.dist().verify_replicas()) verify_replicas(model, comm, "at the start");
  GradientSync gradient_sync(comm, *backend, model.grads(), model.layout().total_size(),
                             gradient_sync_options(config, comm.world_size()));

  MetricsWriter metrics(metrics_path(options.out_dir, rank));
  ProgressLine progress(/*enabled=*/rank == 0);
  CommReducer key_norm_reducer(comm, "key-norm all-reduce");
  const LrSchedule schedule = schedule_from(config, total_steps);
  LOG(INFO) << "Training " << attention_scheme_name(model_config.attention) << " ViT ("
            << model.layout().total_size() << " parameters, D " << model_config.embed_dim
            << ", depth " << model_config.depth << ", H " << model_config.num_heads << ", G "
            << model_config.num_kv_heads << ") for " << total_steps << " steps of " << global_batch
            << " images on " << world << " rank(s), rank " << rank << ": " << backend->name()
            << " with " << threads << " threads, " << gradient_sync.num_buckets()
            << " gradient buckets summed by " << gradient_sync.method();

  auto checkpoint = [&] {
    if (rank == 0) {
      const TrainingPosition position{step, step / steps_per_epoch, step % steps_per_epoch};
      const std::string dir = write_checkpoint(options.out_dir, model, optimizer, position, config,
                                               world, config.checkpoint().keep_last());
      progress.message("checkpoint " + dir);
    }
    comm.barrier("checkpoint write");
  };

  const Clock::time_point start = Clock::now();
  const int64_t first_step = step;
  Clock::time_point window_start = start;  // throughput is measured over each log window
  int64_t window_images = 0;
  // Seconds spent waiting for gradients after backward, with and without overlap (every
  // kOverlapProbe-th step starts its buckets only after backward, for comparison).
  constexpr int kOverlapProbe = 10;
  double wait_overlapped = 0, wait_after = 0;
  int64_t steps_overlapped = 0, steps_after = 0;
  auto run_eval = [&](int64_t at_step) {
    const EvalResult result = evaluate(model, test_loader, comm, at_step);
    metrics.eval(at_step, result.loss, result.top1, result.examples);
    char text[128];
    std::snprintf(text, sizeof(text), "eval at step %lld: loss %.4f, top-1 %.2f%% of %lld",
                  static_cast<long long>(at_step), result.loss, 100 * result.top1,
                  static_cast<long long>(result.examples));
    progress.message(text);
    window_start = Clock::now();  // evaluation time does not count as training throughput
  };

  // A resumed run knows the allocation its checkpoint logged last.
  std::vector<std::vector<int>> logged_allocation;
  if (step > 0) logged_allocation = active_allocations(model);
  ForwardContext context;
  Batch data;
  bool epoch_started = false;
  while (step < total_steps) {
    const int64_t epoch = step / steps_per_epoch;
    if (!epoch_started) {  // a new epoch, or the middle of one after a resume
      train_loader.start_epoch(epoch, step % steps_per_epoch);
      epoch_started = true;
    }
    if (!train_loader.next(&data)) throw std::logic_error("the training data ran out mid-epoch");
    context.training = true;
    context.step = step;
    model.zero_grads();
    float loss_sum = static_cast<float>(model.forward(data.images.data(), data.labels.data(),
                                                      data.size, context, key_norm_reducer));
    comm.all_reduce_sum(&loss_sum, 1, "loss all-reduce");
    if (!std::isfinite(loss_sum)) {
      throw std::runtime_error("the training diverged at step " + std::to_string(step + 1) +
                               ": the loss is not finite");
    }
    // Each rank's gradient of (its losses / global batch); their sum is the global mean's.
    const bool probe = step % kOverlapProbe == kOverlapProbe - 1;
    gradient_sync.set_overlap(!probe);
    model.backward(1.f / global_batch, [&](int64_t first) { gradient_sync.ready(first); });
    (probe ? wait_after : wait_overlapped) += gradient_sync.finish();
    ++(probe ? steps_after : steps_overlapped);
    const float lr = schedule.at(step);
    const float grad_norm = optimizer.step(model.params(), model.grads(), lr);
    ++step;
    window_images += global_batch;
    if (step % steps_per_epoch == 0) epoch_started = false;

    const std::vector<std::vector<int>> allocation = active_allocations(model);
    const bool log_step = step % train.log_every_steps() == 0 || step == total_steps;
    const bool kdgqa = model_config.attention == AttentionScheme::kKDGQA;
    if (allocation != logged_allocation || (kdgqa && log_step)) {
      metrics.allocation(step, allocation);
      logged_allocation = allocation;
    }
    if (log_step) {
      const double images_per_sec = window_images / seconds_since(window_start);
      const double loss = static_cast<double>(loss_sum) / global_batch;
      metrics.train(step, epoch, loss, lr, grad_norm, images_per_sec);
      const double per_step = seconds_since(start) / (step - first_step);
      progress.update(step, total_steps, loss, images_per_sec, per_step * (total_steps - step));
      window_start = Clock::now();
      window_images = 0;
    }
    // Training always ends with an evaluation, and a checkpoint comes after the evaluations of
    // its step: a run resumed from it never repeats or misses one.
    const int64_t eval_every =
        train.eval_every_steps() > 0 ? train.eval_every_steps() : steps_per_epoch;
    if (step % eval_every == 0 || step == total_steps) run_eval(step);

    // A stop signal on any rank stops every rank, after the same step.
    float stop = stop_requested() ? 1.f : 0.f;
    comm.all_reduce_sum(&stop, 1, "stop-request all-reduce");
    const int64_t every = config.checkpoint().every_steps();
    const bool checkpoint_due = stop > 0 || (every > 0 && step % every == 0) || step == total_steps;
    if (checkpoint_due && !options.out_dir.empty()) checkpoint();
    if (stop > 0 && options.out_dir.empty()) {
      throw std::runtime_error("stopped on request after step " + std::to_string(step) +
                               " without a checkpoint (no --out)");
    }
    if (stop > 0) {
      throw StoppedOnRequest("stopped on request after step " + std::to_string(step) +
                             "; continue with --resume auto");
    }
  }
  progress.finish();
  const double train_seconds = seconds_since(start);
  LOG(INFO) << "Trained " << step << " steps in " << train_seconds << " s";
  if (world > 1 && steps_after > 0 && steps_overlapped > 0) {
    const double after = wait_after / steps_after, overlapped = wait_overlapped / steps_overlapped;
    LOG(INFO) << "Gradient all-reduce: " << 1e3 * after << " ms per step of waiting when started "
              << "after backward, " << 1e3 * overlapped << " ms when overlapping backward ("
              << (after > 0 ? std::max(0.0, 100 * (1 - overlapped / after)) : 0) << "% hidden)";
  }
  if (config.dist().verify_replicas()) verify_replicas(model, comm, "at the end");

  if (!options.out_dir.empty() && rank == 0) {
    const std::string path = options.out_dir + "/model.safetensors";
    save_weights(model, path);
    LOG(INFO) << "Wrote " << path;
  }
}

}  // namespace dgqa
