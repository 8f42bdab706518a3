#include "cli/bench.h"

#include <glog/logging.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/stopwatch.h"
#include "kernels/backend.h"
#ifdef DGQA_WITH_CUDA
#include "kernels/cuda/device_info.h"
#endif
#include "cli/memory_report.h"
#include "model/flops.h"
#include "trainer/run_setup.h"
#include "trainer/training_step.h"

namespace dgqa {
namespace {

double peak_resident_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux reports KiB
}

// A fixed batch of standard-normal images and uniform labels: the model's cost does not
// depend on the values, and the synthetic batch keeps the data pipeline out of the figure.
Batch synthetic_batch(const ModelConfig& model, int size, uint64_t seed) {
  Batch batch;
  batch.size = size;
  std::mt19937_64 random(seed);
  std::normal_distribution<float> pixel;
  std::uniform_int_distribution<int32_t> label(0, model.num_classes - 1);
  batch.images.resize(static_cast<size_t>(size) * model.in_channels * model.image_size *
                      model.image_size);
  for (float& value : batch.images) value = pixel(random);
  batch.labels.resize(size);
  for (int32_t& value : batch.labels) value = label(random);
  return batch;
}

void print_report(const nlohmann::json& report, bool as_json) {
  if (as_json) {
    std::printf("%s\n", report.dump().c_str());
    std::fflush(stdout);
    return;
  }
  const nlohmann::json& ms = report["ms_per_step"];
  std::printf("%s, %s\n", report["model"].get<std::string>().c_str(),
              report["setup"].get<std::string>().c_str());
  std::printf("  %.2f images/s, %.1f GFLOP/s effective (%.3f GFLOP per image, training)\n",
              report["images_per_sec"].get<double>(), report["gflops_per_sec"].get<double>(),
              report["gflop_per_image"].get<double>());
  std::printf(
      "  ms per step: %.2f = data %.2f + forward %.2f + backward %.2f + communication "
      "%.2f + optimizer %.2f\n",
      ms["total"].get<double>(), ms["data"].get<double>(), ms["forward"].get<double>(),
      ms["backward"].get<double>(), ms["communication"].get<double>(),
      ms["optimizer"].get<double>());
  const nlohmann::json& trajectory = report["trajectory"];
  std::printf("  loss %.4f at the first timed step, %.4f at the last\n",
              trajectory.front()["loss"].get<double>(), trajectory.back()["loss"].get<double>());
  std::printf("  %s\n", memory_text(report["memory_per_rank"]).c_str());
  std::printf(
      "  peak resident memory %.0f MiB (measured: also the program, its libraries and the "
      "input batches)\n",
      report["peak_memory_mib"].get<double>());
  if (report.contains("device_name")) {
    std::printf(
        "  %s (%d SMs): %.0f MiB of device memory in use after the steps (every model\n"
        "  buffer is allocated before the first step)\n",
        report["device_name"].get<std::string>().c_str(), report["device_sm_count"].get<int>(),
        report["device_memory_bytes"].get<double>() / (1 << 20));
  }
  if (report.contains("mfu")) {
    std::printf("  MFU %.1f%% of a peak of %g TFLOP/s per device (%s)\n",
                100 * report["mfu"].get<double>(), report["peak_tflops"].get<double>(),
                report["peak_source"].get<std::string>().c_str());
  } else if (report.contains("device_name")) {
    std::printf("  MFU not known: no built-in peak for this device; give --peak-tflops X\n");
  }
  std::fflush(stdout);
}

// Adds what bench knows of the device to the report: on the CUDA backend the GPU's name, SM count
// and memory in use (kernels/cuda/device_info.h), and, when a peak is known (--peak-tflops, else
// the GPU's built-in figure for the backend's precision), the model FLOP utilisation: effective
// FLOP/s over the peak of all ranks' devices together (one device per rank).
void add_device_report(const CommandLine& line, Backend& backend, int world,
                       nlohmann::json* report) {
  double peak_tflops = line.bench_peak_tflops;
  std::string peak_source = "--peak-tflops";
#ifdef DGQA_WITH_CUDA
  if (backend.name() == "cuda") {
    const cuda::DeviceInfo device = cuda::device_info(backend.precision());
    (*report)["device_name"] = device.name;
    (*report)["device_sm_count"] = device.sm_count;
    (*report)["device_memory_bytes"] = cuda::device_memory_in_use();
    if (peak_tflops == 0 && device.peak_flops > 0) {
      peak_tflops = device.peak_flops / 1e12;
      peak_source = std::string(backend.precision() == Precision::kBF16 ? "bf16" : "fp32") +
                    " dense, NVIDIA datasheet";
    }
  }
#endif
  if (peak_tflops <= 0) return;
  (*report)["peak_tflops"] = peak_tflops;
  (*report)["peak_source"] = peak_source;
  (*report)["mfu"] = (*report)["gflops_per_sec"].get<double>() / (1e3 * peak_tflops * world);
}

// --data-only: how fast the loader delivers this rank's batches of the --split (read, decode,
// augment, resize, normalise), with nothing consuming them.
void bench_data(const CommandLine& line, const config::Config& config, Communicator& comm) {
  const bool train = line.split == "train";
  const RunSetup setup(config, comm, RunParts::data_only(train));
  const ExampleSource& source = setup.split(train);
  BatchLoader& loader = setup.loader(train);
  Batch batch;
  int64_t epoch = 0, images = 0;
  loader.start_epoch(epoch);
  Stopwatch timed;
  for (int step = 0; step < line.bench_warmup + line.bench_steps; ++step) {
    if (step == line.bench_warmup) {
      timed.restart();
      images = 0;
    }
    if (!loader.next(&batch)) {
      loader.start_epoch(++epoch);
      if (!loader.next(&batch)) throw InputError("data: the " + line.split + " split has no batch");
    }
    images += batch.size;
  }
  const double seconds = timed.seconds();
  const std::string data = source.description() + " -> " +
                           std::to_string(setup.model_config.image_size) + "px, " + line.split +
                           " transforms, " + std::to_string(config.data().workers()) + " workers";
  const nlohmann::json report = {{"data", data},
                                 {"split", line.split},
                                 {"workers", config.data().workers()},
                                 {"batch_size_per_rank", batch.size},
                                 {"steps", line.bench_steps},
                                 {"images_per_sec_per_rank", images / seconds},
                                 {"peak_memory_mib", peak_resident_mib()}};
  if (comm.rank() != 0) return;
  if (line.json) {
    std::printf("%s\n", report.dump().c_str());
  } else {
    std::printf("%s\n  %.0f images/s per rank (batches of %d, %d steps), peak memory %.0f MiB\n",
                data.c_str(), images / seconds, batch.size, line.bench_steps, peak_resident_mib());
  }
  std::fflush(stdout);
}

// The timed steps' figures.
struct TimedSteps {
  PhaseTimes times;
  double seconds = 0;
  KeyNormReducer::Totals key_norm_sums;  // inside the forward passes
  const char* key_norm_method = "none";
  nlohmann::json trajectory = nlohmann::json::array();  // per timed step: loss, grad norm, lr
};

// The kernels by time, most expensive first, as a share of the step; then the key-norm sums
// of the forward passes (KDGQA, DGQA), which are communication, not kernels.
void print_profile(const ProfilingBackend& profiler, const TimedSteps& timed, int steps) {
  const double step_seconds = timed.times.total();
  std::vector<std::pair<std::string, ProfilingBackend::Entry>> rows(profiler.entries().begin(),
                                                                    profiler.entries().end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double kernel_seconds = 0;
  std::printf("  %-40s %10s %10s %7s\n", "kernel (matmul: N x C x OC)", "calls/step", "ms/step",
              "share");
  for (const auto& [kernel, entry] : rows) {
    kernel_seconds += entry.seconds;
    std::printf("  %-40s %10.1f %10.2f %6.1f%%\n", kernel.c_str(),
                static_cast<double>(entry.calls) / steps, 1e3 * entry.seconds / steps,
                100 * entry.seconds / step_seconds);
  }
  std::printf("  %-40s %10s %10.2f %6.1f%%\n", "outside the kernels", "",
              1e3 * (step_seconds - kernel_seconds) / steps,
              100 * (step_seconds - kernel_seconds) / step_seconds);
  const KeyNormReducer::Totals& sums = timed.key_norm_sums;
  if (sums.calls > 0) {
    const std::string label = std::string("key-norm all-reduce (") + timed.key_norm_method + ")";
    std::printf(
        "  %-40s %10.1f %10.2f %6.1f%%  (copies to the host included, also counted above)\n",
        label.c_str(), static_cast<double>(sums.calls) / steps, 1e3 * sums.seconds / steps,
        100 * sums.seconds / step_seconds);
  }
  std::fflush(stdout);
}

// Each step's batch: one fixed synthetic batch, or the config's training set epoch by epoch in
// the order `dgqa train` takes it.
class BatchSource {
 public:
  BatchSource(const RunSetup& setup, int batch, uint64_t seed)
      : loader_(setup.train_loader.get()),
        synthetic_(loader_ ? Batch() : synthetic_batch(setup.model_config, batch, seed)) {}
  const Batch& next() {
    if (loader_ == nullptr) return synthetic_;
    if (epoch_ == 0 || !loader_->next(&loaded_)) {  // start, or the end of an epoch
      loader_->start_epoch(epoch_++);
      if (!loader_->next(&loaded_)) throw InputError("data: the training set has no full batch");
    }
    return loaded_;
  }

 private:
  BatchLoader* loader_;
  const Batch synthetic_;
  Batch loaded_;
  int64_t epoch_ = 0;
};

// The schedule's length: the training run's when train.max_steps or the data sets it, else the
// bench's own steps.
int64_t schedule_length(const CommandLine& line, const config::Config& config,
                        const RunSetup& setup) {
  if (setup.train_loader) {
    return total_training_steps(config, setup.train_loader->batches_per_epoch());
  }
  if (config.train().max_steps() > 0) return config.train().max_steps();
  return line.bench_warmup + line.bench_steps;
}

// Runs the warm-up and the timed steps through the training step of `dgqa train`.
TimedSteps run_steps(const CommandLine& line, const config::Config& config, RunSetup& setup,
                     Communicator& comm) {
  TrainingStep training(config, *setup.model, *setup.backend, comm,
                        schedule_length(line, config, setup));
  BatchSource batches(setup, config.train().global_batch_size() / comm.world_size(),
                      config.seed() + comm.rank());
  TimedSteps timed;
  Stopwatch since_start;
  for (int step = 0; step < line.bench_warmup + line.bench_steps; ++step) {
    if (step == line.bench_warmup) {
      comm.barrier("benchmark start");
      timed.times = PhaseTimes();
      if (setup.profiler != nullptr) setup.profiler->reset();
      training.key_norm_reducer().reset_totals();
      since_start.restart();
    }
    Stopwatch data;
    const Batch& batch = batches.next();
    timed.times.data += data.seconds();
    // The benchmark has no epochs: its steps count as one long epoch.
    const StepResult result = training.run(batch, step, step, &timed.times);
    if (step >= line.bench_warmup) {
      timed.trajectory.push_back({{"step", step + 1},
                                  {"loss", result.loss},
                                  {"grad_norm", result.grad_norm},
                                  {"lr", result.lr}});
    }
  }
  timed.seconds = since_start.seconds();
  timed.key_norm_sums = training.key_norm_reducer().totals();
  timed.key_norm_method = training.key_norm_reducer().method();
  return timed;
}

// What each rank holds for training, computed (model/memory_estimate.h) for the run's setup.
nlohmann::json computed_memory(const config::Config& config, const RunSetup& setup, int world) {
  RankSetup rank;
  rank.micro_batch = training_micro_batch(config, world);
  rank.recompute = config.train().recompute() == config::BLOCK;
  rank.bf16 = setup.backend->precision() == Precision::kBF16;
  rank.weight_ema = config.train().ema_decay() > 0;
  rank.ranks = world;
  rank.zero_stage = config.dist().zero_stage();
  return memory_json(setup.model_config, rank);
}

// The report of the timed steps as one JSON object (print_report's input).
nlohmann::json make_report(const config::Config& config, const RunSetup& setup,
                           const TimedSteps& timed, int steps, int world) {
  const ModelConfig& m = setup.model_config;
  const int global_batch = config.train().global_batch_size();
  const double images_per_sec = static_cast<double>(global_batch) * steps / timed.seconds;
  const double flops_per_image = training_flops_per_image(m);
  char model_text[256], setup_text[256];
  std::snprintf(model_text, sizeof(model_text),
                "%s ViT %dx%dx%d patch %d, D %d, depth %d, H %d, G %d",
                attention_scheme_name(m.attention), m.image_size, m.image_size, m.in_channels,
                m.patch_size, m.embed_dim, m.depth, m.num_heads, m.num_kv_heads);
  std::snprintf(setup_text, sizeof(setup_text),
                "batch %d on %d rank(s), %s backend, %d threads per rank, %d steps, %s data",
                global_batch, world, setup.backend->name().c_str(), setup.threads, steps,
                setup.train_loader ? "real" : "synthetic");
  auto per_step_ms = [&](double phase) { return 1e3 * phase / steps; };
  const PhaseTimes& t = timed.times;
  return {
      {"model", model_text},
      {"setup", setup_text},
      {"scheme", attention_scheme_name(m.attention)},
      {"shape",
       {{"image_size", m.image_size},
        {"patch_size", m.patch_size},
        {"in_channels", m.in_channels},
        {"num_classes", m.num_classes},
        {"embed_dim", m.embed_dim},
        {"depth", m.depth},
        {"num_heads", m.num_heads},
        {"num_kv_heads", m.num_kv_heads},
        {"dgqa_window", m.dgqa_window},
        {"dgqa_beta", m.dgqa_beta}}},
      {"global_batch_size", global_batch},
      {"world_size", world},
      {"threads_per_rank", setup.threads},
      {"backend", setup.backend->name()},
      {"precision", setup.backend->precision() == Precision::kBF16 ? "bf16" : "fp32"},
      {"steps", steps},
      {"images_per_sec", images_per_sec},
      {"gflop_per_image", flops_per_image / 1e9},
      {"gflops_per_sec", images_per_sec * flops_per_image / 1e9},
      {"ms_per_step",
       {{"total", per_step_ms(t.total())},
        {"data", per_step_ms(t.data)},
        {"forward", per_step_ms(t.forward)},
        {"backward", per_step_ms(t.backward)},
        {"communication", per_step_ms(t.communication)},
        {"optimizer", per_step_ms(t.optimizer)}}},
      {"trajectory", timed.trajectory},
      {"memory_per_rank", computed_memory(config, setup, world)},
      {"peak_memory_mib", peak_resident_mib()},
  };
}

}  // namespace

void bench_command(const CommandLine& line, const config::Config& config, Communicator& comm) {
  if (line.bench_data_only) return bench_data(line, config, comm);
  if (line.bench_plan) {
    if (comm.rank() == 0) plan_command(line, config);
    return;
  }
  RunParts parts;
  parts.train_data = line.bench_real_data;
  parts.training = true;
  parts.profile = line.bench_profile;
  RunSetup setup(config, comm, parts);
  LOG(INFO) << "Benchmarking " << attention_scheme_name(setup.model_config.attention) << " ViT ("
            << setup.model->layout().total_size() << " parameters) with "
            << config.train().global_batch_size() << " images a step on " << comm.world_size()
            << " rank(s): " << line.bench_warmup << " warm-up and " << line.bench_steps
            << " timed steps";
  const TimedSteps timed = run_steps(line, config, setup, comm);
  nlohmann::json report = make_report(config, setup, timed, line.bench_steps, comm.world_size());
  add_device_report(line, *setup.backend, comm.world_size(), &report);
  if (comm.rank() != 0) return;
  print_report(report, line.json);
  if (setup.profiler != nullptr) print_profile(*setup.profiler, timed, line.bench_steps);
}

}  // namespace dgqa
