#include "trainer/trainer.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <vector>

#include "common/error.h"
#include "common/stopwatch.h"
#include "io/weights.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluate.h"
#include "trainer/metrics.h"
#include "trainer/preemption.h"
#include "trainer/replicas.h"
#include "trainer/run_setup.h"
#include "trainer/tensorboard.h"
#include "trainer/training_step.h"

namespace dgqa {
namespace {

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

// model.pretrained_final_norm FRESH: the final norm as initialised (weight 1, bias 0) instead of
// the one of the --init-from weights, as the paper's code leaves it (docs/experiments.md).
void reset_final_norm(VisionTransformer& model) {
  std::vector<float> params = model.params_to_host();
  const ParamLayout& layout = model.layout();
  const int64_t width = model.config().embed_dim;
  std::fill_n(params.begin() + layout.norm_w, width, 1.f);
  std::fill_n(params.begin() + layout.norm_b, width, 0.f);
  model.params_from_host(params);
  LOG(INFO) << "model.pretrained_final_norm FRESH: the final norm starts at weight 1, bias 0";
}

// Removes the records of the steps after `step` from a run directory's metrics.jsonl and
// TensorBoard event files, so that the run continuing from `step` writes each step once.
void cut_records_after(const std::string& out_dir, int64_t step) {
  truncate_metrics_after(out_dir + "/metrics.jsonl", step);
  truncate_tensorboard_after(out_dir + "/tensorboard", step);
}

// Restores the checkpoint --resume names, if any, and returns the position to continue from.
// Without a checkpoint, --init-from (if given) provides the starting weights.
TrainingPosition resume(const TrainOptions& options, const config::Config& config, int rank,
                        int world, int64_t steps_per_epoch, VisionTransformer& model,
                        AdamW& optimizer, WeightEma* ema) {
  std::optional<Checkpoint> checkpoint;
  if (options.resume == "auto") {
    checkpoint = find_checkpoint_to_resume(options.out_dir, config);
    if (!checkpoint) LOG(INFO) << "No checkpoint under " << options.out_dir << ": a fresh start";
  } else if (!options.resume.empty()) {
    checkpoint = open_checkpoint(options.resume, config);
  }
  if (!checkpoint) {
    if (!options.init_from.empty()) {
      load_weights(model, options.init_from, OtherHead::kReinitialise, OtherGrid::kResample);
      LOG(INFO) << "Initialised the weights from " << options.init_from;
      if (config.model().pretrained_final_norm() == config::FRESH) reset_final_norm(model);
    }
    // A fresh start in a directory with an earlier run's records (a rerun, or --resume auto
    // before the first checkpoint): the records start again, as the weights do. Only now that
    // the start cannot fail any more: a failed run leaves the earlier one as it was.
    if (!options.out_dir.empty() && rank == 0) cut_records_after(options.out_dir, -1);
    return {};
  }
  check_checkpoint_position(*checkpoint, config, steps_per_epoch);
  restore_checkpoint(*checkpoint, model, optimizer, ema);
  const checkpoint::State& state = checkpoint->state;
  LOG(INFO) << "Resuming from " << checkpoint->dir << " after step " << state.step();
  if (state.world_size() != world) {
    LOG(WARNING) << "The checkpoint was written by " << state.world_size() << " rank(s), this run "
                 << "has " << world << ": the data order continues, but the results will not be "
                 << "bit-identical to an uninterrupted run (sums are taken in another order)";
  }
  if (!options.out_dir.empty() && rank == 0) cut_records_after(options.out_dir, state.step());
  return position_of(state);
}

// Ends the run as diverged if a weight is not finite after `step` steps: nothing (checkpoint,
// model.safetensors, final evaluation) may be written from such weights.
void check_weights_finite(const VisionTransformer& model, int64_t step) {
  const std::vector<float> params = model.params_to_host();
  for (const TensorSlot& slot : model.layout().tensors()) {
    const auto first = params.begin() + slot.offset;
    if (std::all_of(first, first + slot.size, [](float v) { return std::isfinite(v); })) continue;
    throw std::runtime_error("the training diverged at step " + std::to_string(step) +
                             ": the weights of " + slot.name + " are not finite");
  }
}

RunParts training_run_parts() {
  RunParts parts;
  parts.train_data = parts.test_data = parts.training = true;
  return parts;
}

// How much of the gradient communication backward hides: every kEvery-th step starts its
// buckets only after backward, and its wait is compared with the others'.
class OverlapProbe {
 public:
  bool is_probe(int64_t step) const { return step % kEvery == kEvery - 1; }
  void record(int64_t step, double wait_s) {
    (is_probe(step) ? wait_after_ : wait_overlapped_) += wait_s;
    ++(is_probe(step) ? steps_after_ : steps_overlapped_);
  }
  void log() const {
    if (steps_after_ == 0 || steps_overlapped_ == 0) return;
    const double after = wait_after_ / steps_after_,
                 overlapped = wait_overlapped_ / steps_overlapped_;
    LOG(INFO) << "Gradient all-reduce: " << 1e3 * after << " ms per step of waiting when started "
              << "after backward, " << 1e3 * overlapped << " ms when overlapping backward ("
              << (after > 0 ? std::max(0.0, 100 * (1 - overlapped / after)) : 0) << "% hidden)";
  }

 private:
  static constexpr int kEvery = 10;
  double wait_overlapped_ = 0, wait_after_ = 0;
  int64_t steps_overlapped_ = 0, steps_after_ = 0;
};

class Trainer {
 public:
  Trainer(const config::Config& config, const TrainOptions& options, Communicator& comm);
  void run();

 private:
  void log_start();
  void record(const StepResult& result, int64_t epoch);
  void record_allocation(bool log_step);
  void evaluate_now();
  EvalResult evaluate_weight_ema();
  void checkpoint_or_stop();
  void finish();

  const config::Config& config_;
  const TrainOptions& options_;
  Communicator& comm_;
  const int rank_;
  RunSetup setup_;
  VisionTransformer& model_;
  const int64_t steps_per_epoch_, total_steps_;
  TrainingStep training_;
  KeyNormReducer eval_reducer_;   // the training's path, named for evaluation
  const TrainingPosition start_;  // the checkpoint's, or a fresh run's
  int64_t step_;                  // optimizer steps done
  MetricsWriter metrics_;
  TensorBoardLog tensorboard_;  // the scalars of a step, written after its evaluation
  ProgressLine progress_;
  OverlapProbe overlap_;
  // Throughput: the images this process trained since the last log step over the time spent
  // training them (evaluations excluded: timed_seconds_ holds the time before the last one).
  Stopwatch since_start_, since_log_;
  int64_t timed_images_ = 0;
  double timed_seconds_ = 0;
  int64_t first_step_;
  int64_t images_since_log_;  // over all ranks
  // This rank's counts since the last log step, summed over the ranks at log steps (rank 0
  // starts with a resumed checkpoint's sums).
  int64_t correct_since_log_, bad_images_since_log_;
  std::vector<std::vector<int>> logged_allocation_;
};

Trainer::Trainer(const config::Config& config, const TrainOptions& options, Communicator& comm)
    : config_(config),
      options_(options),
      comm_(comm),
      rank_(comm.rank()),
      setup_(config, comm, training_run_parts()),
      model_(*setup_.model),
      steps_per_epoch_(setup_.train_loader->batches_per_epoch()),
      total_steps_(total_training_steps(config, steps_per_epoch_)),
      training_(config, model_, *setup_.backend, comm, total_steps_),
      eval_reducer_(comm, gradient_sync_options(config, comm.world_size()),
                    training_.gradient_sync().nccl_sum(), "evaluation key-norm all-reduce"),
      start_(resume(options, config, rank_, comm.world_size(), steps_per_epoch_, model_,
                    training_.optimizer(), training_.weight_ema())),
      step_(start_.step),
      metrics_(metrics_path(options.out_dir, rank_)),
      tensorboard_(tensorboard_dir(config, options.out_dir, rank_)),
      progress_(/*enabled=*/rank_ == 0),
      first_step_(step_),
      images_since_log_(start_.log_window_images),
      correct_since_log_(rank_ == 0 ? start_.log_window_correct : 0),
      bad_images_since_log_(rank_ == 0 ? start_.log_window_bad_images : 0) {
  comm.set_stop_grace(stop_requested, kStopGraceSeconds);
  // Every rank starts from rank 0's weights (they already agree: same seed or same file).
  broadcast_params(model_, comm);
  if (config.dist().verify_replicas()) verify_replicas(model_, comm, "at the start");
  // A resumed run knows the allocation its checkpoint logged last.
  if (step_ > 0) logged_allocation_ = active_allocations(model_);
  log_start();
}

void Trainer::run() {
  BatchLoader& loader = *setup_.train_loader;
  Batch data;
  bool epoch_started = false;
  since_start_.restart();
  since_log_.restart();
  while (step_ < total_steps_) {
    const int64_t epoch = step_ / steps_per_epoch_;
    if (!epoch_started) {  // a new epoch, or the middle of one after a resume
      loader.start_epoch(epoch, step_ % steps_per_epoch_);
      epoch_started = true;
    }
    if (!loader.next(&data)) throw std::logic_error("the training data ran out mid-epoch");
    training_.gradient_sync().set_overlap(!overlap_.is_probe(step_));
    const StepResult result = training_.run(data, step_, step_ % steps_per_epoch_);
    overlap_.record(step_, result.sync_wait_s);
    ++step_;
    if (step_ == total_steps_) check_weights_finite(model_, step_);
    if (step_ % steps_per_epoch_ == 0) epoch_started = false;
    record(result, epoch);
    // Training always ends with an evaluation, and a checkpoint comes after the evaluations of
    // its step: a run resumed from it never repeats or misses one.
    const int64_t every = config_.train().eval_every_steps();
    if (step_ % (every > 0 ? every : steps_per_epoch_) == 0 || step_ == total_steps_) {
      evaluate_now();
    }
    tensorboard_.write_step(step_);  // before the checkpoint: resuming from it keeps the event
    checkpoint_or_stop();
  }
  finish();
}

void Trainer::log_start() {
  const ModelConfig& c = setup_.model_config;
  LOG(INFO) << "Training " << attention_scheme_name(c.attention) << " ViT ("
            << model_.layout().total_size() << " parameters, D " << c.embed_dim << ", depth "
            << c.depth << ", H " << c.num_heads << ", G " << c.num_kv_heads << ") for "
            << total_steps_ << " steps of " << config_.train().global_batch_size() << " images on "
            << comm_.world_size() << " rank(s), rank " << rank_ << ": " << setup_.backend->name()
            << " with " << setup_.threads << " threads, " << training_.gradient_sync().num_buckets()
            << " gradient buckets summed by " << training_.gradient_sync().method()
            << ", key norms summed by " << training_.key_norm_reducer().method();
  if (config_.dist().zero_stage() == 1) {
    LOG(INFO) << "ZeRO-1: this rank keeps AdamW's moments of floats ["
              << training_.optimizer().shard_begin() << ", " << training_.optimizer().shard_end()
              << ") of " << model_.layout().total_size();
  }
}

// The metrics of a step: the allocation and key-norm records, and at log steps the loss,
// learning rate, gradient norm, throughput and top-1 of the interval.
void Trainer::record(const StepResult& result, int64_t epoch) {
  images_since_log_ += config_.train().global_batch_size();
  timed_images_ += config_.train().global_batch_size();
  correct_since_log_ += result.correct_top1;
  bad_images_since_log_ += result.replaced_images;
  const bool log_step = step_ % config_.train().log_every_steps() == 0 || step_ == total_steps_;
  record_allocation(log_step);
  if (!log_step) return;
  TrainRecord train;
  train.step = step_;
  train.epoch = epoch;
  train.loss = result.loss;
  train.lr = result.lr;
  train.grad_norm = result.grad_norm;
  train.images_per_sec = timed_images_ / (timed_seconds_ + since_log_.seconds());
  train.top1 =
      static_cast<double>(sum_over_ranks(comm_, correct_since_log_, "training top-1 all-gather")) /
      images_since_log_;
  metrics_.train(train);
  tensorboard_.scalar("train/loss", train.loss);
  tensorboard_.scalar("train/lr", train.lr);
  tensorboard_.scalar("train/grad_norm", train.grad_norm);
  tensorboard_.scalar("train/images_per_sec", train.images_per_sec);
  tensorboard_.scalar("train/top1", train.top1);
  if (config_.data().bad_image() == config::SKIP) {
    const int64_t replaced =
        sum_over_ranks(comm_, bad_images_since_log_, "bad-image count all-gather");
    if (replaced > 0) metrics_.bad_images(step_, replaced);
  }
  const double per_step = since_start_.seconds() / (step_ - first_step_);
  progress_.update(step_, total_steps_, result.loss, train.images_per_sec,
                   per_step * (total_steps_ - step_));
  since_log_.restart();
  timed_seconds_ = 0;
  images_since_log_ = timed_images_ = correct_since_log_ = bad_images_since_log_ = 0;
}

// The allocation when it changed (KDGQA's at every log step too); the key norms that decided
// the step's allocation (KDGQA's at log steps, DGQA's at each window step); DGQA's caches at
// log steps (docs/design.md §7.6).
void Trainer::record_allocation(bool log_step) {
  const std::vector<std::vector<int>> allocation = active_allocations(model_);
  const AttentionScheme scheme = setup_.model_config.attention;
  const bool kdgqa = scheme == AttentionScheme::kKDGQA;
  const bool dgqa = scheme == AttentionScheme::kDGQA_DIFF || scheme == AttentionScheme::kDGQA_EMA;
  if (allocation != logged_allocation_ || (kdgqa && log_step)) {
    metrics_.allocation(step_, allocation);
    tensorboard_.per_kv_head("allocation", allocation);
    logged_allocation_ = allocation;
  }
  std::vector<std::vector<float>> norms, cache_before, caches;
  bool decided_now = false;
  for (const GroupAllocator& allocator : model_.allocators()) {
    const KeyNormDecision& decision = allocator.last_decision();
    decided_now = decided_now || decision.step == step_ - 1;
    norms.push_back(decision.norms);
    cache_before.push_back(decision.cache_before);
    caches.push_back(allocator.cache());
  }
  if (decided_now && (dgqa || log_step)) {
    metrics_.key_norms(step_, norms, dgqa ? cache_before : std::vector<std::vector<float>>{});
    tensorboard_.per_kv_head("key_norms", norms);
  }
  if (dgqa && log_step) {
    metrics_.dgqa_cache(step_, caches);
    tensorboard_.per_kv_head("dgqa_cache", caches);
  }
}

void Trainer::evaluate_now() {
  timed_seconds_ += since_log_.seconds();
  // The weight EMA first: it leaves the allocation state as it found it, for the weights' turn.
  std::optional<EvalResult> ema;
  if (training_.weight_ema()) ema = evaluate_weight_ema();
  const EvalResult result = evaluate(model_, *setup_.test_loader, comm_, eval_reducer_, step_,
                                     config_.train().eval_average());
  if (result.examples > 0 && !std::isfinite(result.loss)) {
    throw std::runtime_error("the training diverged at step " + std::to_string(step_) +
                             ": the evaluation loss is not finite");
  }
  metrics_.eval(step_, result, ema ? &*ema : nullptr);
  tensorboard_.scalar("eval/loss", result.loss);
  tensorboard_.scalar("eval/top1", result.top1);
  tensorboard_.scalar("eval/top5", result.top5);
  if (ema) {
    tensorboard_.scalar("eval/ema_loss", ema->loss);
    tensorboard_.scalar("eval/ema_top1", ema->top1);
    tensorboard_.scalar("eval/ema_top5", ema->top5);
  }
  char text[160];
  std::snprintf(text, sizeof(text),
                "eval at step %lld: loss %.4f, top-1 %.2f%%, top-5 %.2f%% of %lld",
                static_cast<long long>(step_), result.loss, 100 * result.top1, 100 * result.top5,
                static_cast<long long>(result.examples));
  std::string line = text;
  if (ema) {
    std::snprintf(text, sizeof(text), "; weight EMA: loss %.4f, top-1 %.2f%%, top-5 %.2f%%",
                  ema->loss, 100 * ema->top1, 100 * ema->top5);
    line += text;
  }
  progress_.message(line);
  since_log_.restart();  // evaluation time does not count as training throughput
}

// The weight EMA evaluated in the weights' place, from the allocation state the weights'
// evaluation starts from. The weights and the allocation state (which model.dgqa_eval
// PER_BATCH_UPDATE changes) are put back bit for bit.
EvalResult Trainer::evaluate_weight_ema() {
  const std::vector<float> weights = model_.params_to_host();
  const std::vector<GroupAllocator> allocators = model_.allocators();
  model_.params_from_host(training_.weight_ema()->to_host());
  const EvalResult result = evaluate(model_, *setup_.test_loader, comm_, eval_reducer_, step_,
                                     config_.train().eval_average());
  model_.params_from_host(weights);
  model_.allocators() = allocators;
  if (result.examples > 0 && !std::isfinite(result.loss)) {
    throw std::runtime_error("the training diverged at step " + std::to_string(step_) +
                             ": the evaluation loss of the weight EMA is not finite");
  }
  return result;
}

// Writes the checkpoints the schedule, the end of training or a stop request call for; a stop
// signal on any rank stops every rank, after the same step.
void Trainer::checkpoint_or_stop() {
  float stop = stop_requested() ? 1.f : 0.f;
  comm_.all_reduce_sum(&stop, 1, "stop-request all-reduce");
  const int64_t every = config_.checkpoint().every_steps();
  const bool due = stop > 0 || (every > 0 && step_ % every == 0) || step_ == total_steps_;
  if (due && !options_.out_dir.empty()) {
    check_weights_finite(model_, step_);  // never a checkpoint over the last good one
    TrainingPosition position{step_, step_ / steps_per_epoch_, step_ % steps_per_epoch_};
    position.log_window_images = images_since_log_;
    position.log_window_correct =
        sum_over_ranks(comm_, correct_since_log_, "training top-1 all-gather");
    position.log_window_bad_images =
        sum_over_ranks(comm_, bad_images_since_log_, "bad-image count all-gather");
    // Every rank is alive here (the stop all-reduce completed), and the writes may take longer
    // than the stop grace: the ranks wait for each other with the whole timeout.
    comm_.set_stop_grace(nullptr, 0);
    const std::string dir =
        write_checkpoint(options_.out_dir, model_, training_.optimizer(), training_.weight_ema(),
                         position, config_, comm_, config_.checkpoint().keep_last());
    if (rank_ == 0) progress_.message("checkpoint " + dir);
    comm_.barrier("checkpoint write");
    comm_.set_stop_grace(stop_requested, kStopGraceSeconds);
  }
  if (stop == 0) return;
  const std::string after = "stopped on request after step " + std::to_string(step_);
  if (options_.out_dir.empty())
    throw std::runtime_error(after + " without a checkpoint (no --out)");
  throw StoppedOnRequest(after + "; continue with --resume auto");
}

void Trainer::finish() {
  progress_.finish();
  // A resumed run trained only the steps after its checkpoint in this process's time.
  LOG(INFO) << "Trained " << step_ - first_step_ << " steps (" << first_step_ + 1 << " to " << step_
            << ") in " << since_start_.seconds() << " s";
  if (comm_.world_size() > 1) overlap_.log();
  if (config_.dist().verify_replicas()) verify_replicas(model_, comm_, "at the end");
  if (!options_.out_dir.empty() && rank_ == 0) {
    const std::string path = options_.out_dir + "/model.safetensors";
    save_weights(model_, path);
    LOG(INFO) << "Wrote " << path;
    if (training_.weight_ema()) {
      const std::string ema_path = options_.out_dir + "/model_ema.safetensors";
      save_weights(model_, training_.weight_ema()->to_host(), ema_path);
      LOG(INFO) << "Wrote " << ema_path;
    }
  }
}

}  // namespace

void run_training(const config::Config& config, const TrainOptions& options, Communicator& comm) {
  Trainer(config, options, comm).run();
}

}  // namespace dgqa
