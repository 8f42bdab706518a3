#include "cli/bench.h"

#include <glog/logging.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/loader.h"
#include "kernels/backend.h"
#include "kernels/cpu/threads.h"
#ifdef DGQA_WITH_CUDA
#include "kernels/cuda/device_info.h"
#endif
#include "kernels/profiling_backend.h"
#include "model/flops.h"
#include "model/vit.h"
#include "trainer/comm_reducer.h"
#include "trainer/datasets.h"
#include "trainer/gradient_sync.h"
#include "trainer/optimizer.h"

namespace dgqa {
namespace {

using Clock = std::chrono::steady_clock;

// Wall-clock seconds per phase of a step. On a device backend every phase ends with a
// synchronize, so that each phase is charged for its own kernels.
struct PhaseTimes {
  double data = 0, forward = 0, backward = 0, communication = 0, optimizer = 0;
  double total() const { return data + forward + backward + communication + optimizer; }
};

class PhaseClock {
 public:
  explicit PhaseClock(Backend& backend) : backend_(backend), last_(Clock::now()) {}
  // Adds the time since the previous call to *phase.
  void charge(double* phase) {
    backend_.synchronize();
    const Clock::time_point now = Clock::now();
    *phase += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  Backend& backend_;
  Clock::time_point last_;
};

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

AdamWSettings adamw_settings(const config::Config& config) {
  AdamWSettings settings;
  settings.beta1 = config.optimizer().beta1();
  settings.beta2 = config.optimizer().beta2();
  settings.eps = config.optimizer().eps();
  settings.weight_decay = config.optimizer().weight_decay();
  settings.grad_clip = config.optimizer().grad_clip();
  return settings;
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
  std::printf("  peak resident memory %.0f MiB\n", report["peak_memory_mib"].get<double>());
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

// --data-only: how fast the loader delivers this rank's batches of the training set (decode,
// resize, normalise, augment), with nothing consuming them.
void bench_data(const CommandLine& line, const config::Config& config, Communicator& comm) {
  const ModelConfig model_config = model_config_from(config);
  const Dataset train_set = load_dataset(config, model_config, /*train=*/true);
  BatchLoader loader(train_set,
                     loader_options(config, model_config, true, comm.rank(), comm.world_size()));
  Batch batch;
  int64_t epoch = 0, images = 0;
  loader.start_epoch(epoch);
  Clock::time_point start = Clock::now();
  for (int step = 0; step < line.bench_warmup + line.bench_steps; ++step) {
    if (step == line.bench_warmup) {
      start = Clock::now();
      images = 0;
    }
    if (!loader.next(&batch)) {
      loader.start_epoch(++epoch);
      if (!loader.next(&batch)) throw InputError("data: the training set has no full batch");
    }
    images += batch.size;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  char source[256];
  std::snprintf(source, sizeof(source), "%s training set, %d examples of %dx%dx%d -> %dx%d",
                config::DataFormat_Name(config.data().format()).c_str(), train_set.num_examples,
                train_set.channels, train_set.height, train_set.width, model_config.image_size,
                model_config.image_size);
  const nlohmann::json report = {{"data", source},
                                 {"batch_size_per_rank", batch.size},
                                 {"steps", line.bench_steps},
                                 {"images_per_sec_per_rank", images / seconds},
                                 {"peak_memory_mib", peak_resident_mib()}};
  if (comm.rank() != 0) return;
  if (line.bench_json) {
    std::printf("%s\n", report.dump().c_str());
  } else {
    std::printf("%s\n  %.0f images/s per rank (batches of %d, %d steps)\n", source,
                images / seconds, batch.size, line.bench_steps);
  }
  std::fflush(stdout);
}

// The kernels by time, most expensive first, as a share of the step.
void print_profile(const ProfilingBackend& profiler, int steps, double step_seconds) {
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
  std::fflush(stdout);
}

}  // namespace

void bench_command(const CommandLine& line, const config::Config& config, Communicator& comm) {
  if (line.bench_data_only) return bench_data(line, config, comm);
  const ModelConfig model_config = model_config_from(config);
  const int threads = cpu::set_threads(config.train().threads());
  const int world = comm.world_size();
  const int global_batch = config.train().global_batch_size();
  const int batch = global_batch / world;  // validate_config checks the division
  std::unique_ptr<Backend> backend =
      make_backend(backend_options_from(config, comm.info().local_rank));
  ProfilingBackend* profiler = nullptr;
  if (line.bench_profile) {
    auto profiling = std::make_unique<ProfilingBackend>(std::move(backend));
    profiler = profiling.get();
    backend = std::move(profiling);
  }
  VisionTransformer model(model_config, *backend, batch, config.seed());
  AdamW optimizer(*backend, model.layout(), adamw_settings(config));
  GradientSync gradient_sync(comm, *backend, model.grads(), model.layout().total_size(),
                             gradient_sync_options(config, comm.world_size()));
  CommReducer key_norm_reducer(comm, "key-norm all-reduce");
  // The batches: one fixed synthetic batch, or the config's training set through the loader.
  const Batch synthetic = synthetic_batch(model_config, batch, config.seed() + comm.rank());
  std::unique_ptr<Dataset> train_set;
  std::unique_ptr<BatchLoader> loader;
  if (line.bench_real_data) {
    train_set = std::make_unique<Dataset>(load_dataset(config, model_config, /*train=*/true));
    loader = std::make_unique<BatchLoader>(
        *train_set, loader_options(config, model_config, true, comm.rank(), world));
  }
  int64_t epoch = 0;
  Batch loaded;
  auto next_batch = [&]() -> const Batch& {
    if (!loader) return synthetic;
    if (epoch == 0 || !loader->next(&loaded)) {  // start, or the end of an epoch
      loader->start_epoch(epoch++);
      if (!loader->next(&loaded)) throw InputError("data: the training set has no full batch");
    }
    return loaded;
  };
  LOG(INFO) << "Benchmarking " << attention_scheme_name(model_config.attention) << " ViT ("
            << model.layout().total_size() << " parameters) with " << global_batch
            << " images a step on " << world << " rank(s): " << line.bench_warmup << " warm-up and "
            << line.bench_steps << " timed steps";

  PhaseTimes times;
  ForwardContext context;
  context.training = true;
  const float lr = config.optimizer().lr();
  Clock::time_point timed_start = Clock::now();
  for (int step = 0; step < line.bench_warmup + line.bench_steps; ++step) {
    if (step == line.bench_warmup) {
      comm.barrier("benchmark start");
      times = PhaseTimes();
      if (profiler != nullptr) profiler->reset();
      timed_start = Clock::now();
    }
    PhaseClock clock(*backend);
    const Batch& data = next_batch();
    clock.charge(&times.data);
    context.step = step;
    model.zero_grads();
    float loss = static_cast<float>(
        model.forward(data.images.data(), data.labels.data(), batch, context, key_norm_reducer));
    clock.charge(&times.forward);
    comm.all_reduce_sum(&loss, 1, "loss all-reduce");
    model.backward(1.f / global_batch, [&](int64_t first) { gradient_sync.ready(first); });
    clock.charge(&times.backward);
    gradient_sync.finish();
    clock.charge(&times.communication);
    optimizer.step(model.params(), model.grads(), lr);
    clock.charge(&times.optimizer);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - timed_start).count();
  const int steps = line.bench_steps;
  const double images_per_sec = static_cast<double>(global_batch) * steps / seconds;
  const double flops_per_image = training_flops_per_image(model_config);

  char model_text[256], setup_text[256];
  std::snprintf(model_text, sizeof(model_text),
                "%s ViT %dx%dx%d patch %d, D %d, depth %d, H %d, G %d",
                attention_scheme_name(model_config.attention), model_config.image_size,
                model_config.image_size, model_config.in_channels, model_config.patch_size,
                model_config.embed_dim, model_config.depth, model_config.num_heads,
                model_config.num_kv_heads);
  std::snprintf(setup_text, sizeof(setup_text),
                "batch %d on %d rank(s), %s backend, %d threads per rank, %d steps, %s data",
                global_batch, world, backend->name().c_str(), threads, steps,
                loader ? "real" : "synthetic");
  auto per_step_ms = [&](double phase) { return 1e3 * phase / steps; };
  nlohmann::json report = {
      {"model", model_text},
      {"setup", setup_text},
      {"scheme", attention_scheme_name(model_config.attention)},
      {"shape",
       {{"image_size", model_config.image_size},
        {"patch_size", model_config.patch_size},
        {"in_channels", model_config.in_channels},
        {"num_classes", model_config.num_classes},
        {"embed_dim", model_config.embed_dim},
        {"depth", model_config.depth},
        {"num_heads", model_config.num_heads},
        {"num_kv_heads", model_config.num_kv_heads},
        {"dgqa_window", model_config.dgqa_window},
        {"dgqa_beta", model_config.dgqa_beta}}},
      {"global_batch_size", global_batch},
      {"world_size", world},
      {"threads_per_rank", threads},
      {"backend", backend->name()},
      {"precision", backend->precision() == Precision::kBF16 ? "bf16" : "fp32"},
      {"steps", steps},
      {"images_per_sec", images_per_sec},
      {"gflop_per_image", flops_per_image / 1e9},
      {"gflops_per_sec", images_per_sec * flops_per_image / 1e9},
      {"ms_per_step",
       {{"total", per_step_ms(times.total())},
        {"data", per_step_ms(times.data)},
        {"forward", per_step_ms(times.forward)},
        {"backward", per_step_ms(times.backward)},
        {"communication", per_step_ms(times.communication)},
        {"optimizer", per_step_ms(times.optimizer)}}},
      {"peak_memory_mib", peak_resident_mib()},
  };
  add_device_report(line, *backend, world, &report);
  if (comm.rank() != 0) return;
  print_report(report, line.bench_json);
  if (profiler != nullptr) print_profile(*profiler, steps, times.total());
}

}  // namespace dgqa
