// What `dgqa train`, `eval` and `bench` set up the same way from a config, in this order: the
// CPU threads, the datasets and their loaders (every input checked before any work), this
// rank's compute backend and the model, initialised from the config's seed.
#pragma once

#include <memory>

#include "comm/communicator.h"
#include "data/example_source.h"
#include "data/loader.h"
#include "kernels/backend.h"
#include "kernels/profiling_backend.h"
#include "model/vit.h"
#include "trainer/config.h"

namespace dgqa {

// The parts a command needs.
struct RunParts {
  bool train_data = false;  // the training split and its loader
  bool test_data = false;   // the test split and its loader (evaluation)
  bool training = false;    // the model takes training steps (global batch / ranks images)
  bool model = true;        // the backend and the model (bench --data-only needs neither)
  bool profile = false;     // the backend times every kernel call (bench --profile)

  // One split and its loader, without a model (bench --data-only, dump-data).
  static RunParts data_only(bool train) {
    RunParts parts;
    parts.train_data = train;
    parts.test_data = !train;
    parts.model = false;
    return parts;
  }
};

class RunSetup {
 public:
  // Throws InputError naming the field or file at fault.
  RunSetup(const config::Config& config, Communicator& comm, const RunParts& parts);

  const ModelConfig model_config;
  int threads = 0;  // CPU threads of this rank
  std::unique_ptr<ExampleSource> train_set, test_set;
  std::unique_ptr<BatchLoader> train_loader, test_loader;
  // The training (train = true) or test split and its loader; set up by RunParts.
  const ExampleSource& split(bool train) const { return train ? *train_set : *test_set; }
  BatchLoader& loader(bool train) const { return train ? *train_loader : *test_loader; }
  std::unique_ptr<Backend> backend;
  ProfilingBackend* profiler = nullptr;  // inside `backend`, with RunParts::profile
  std::unique_ptr<VisionTransformer> model;
};

// The images of one training forward pass of a rank: train.micro_batch_size, or the whole
// per-rank batch (global batch / world) when it is 0. Throws InputError unless world divides the
// global batch and the micro-batch divides the per-rank batch.
int training_micro_batch(const config::Config& config, int world);

// The optimizer steps of a training run: train.max_steps, else train.epochs epochs.
int64_t total_training_steps(const config::Config& config, int64_t steps_per_epoch);

}  // namespace dgqa
