#include "trainer/run_setup.h"

#include <algorithm>
#include <string>

#include "common/error.h"
#include "kernels/cpu/threads.h"
#include "trainer/datasets.h"
#include "trainer/memory_check.h"

namespace dgqa {
namespace {

// The largest batch a forward pass of this rank sees: the micro-batch in training, the
// evaluation batch (at most the test split) shared out over the ranks.
RankBatch largest_batch(const config::Config& config, const RunParts& parts,
                        const ExampleSource* test_set, int world) {
  RankBatch batch;
  if (parts.training) {
    const bool micro = config.train().micro_batch_size() > 0;
    batch = {training_micro_batch(config, world),
             micro ? "train.micro_batch_size" : "train.global_batch_size",
             config.train().global_batch_size() / world};
  }
  if (test_set != nullptr) {
    const int eval_batch = static_cast<int>(
        std::min<int64_t>(config.train().eval_batch_size(), test_set->num_examples()));
    const int per_rank = static_cast<int>((int64_t{eval_batch} + world - 1) / world);
    batch.loader_images = std::max(batch.loader_images, per_rank);
    if (per_rank > batch.images) batch = {per_rank, "train.eval_batch_size", batch.loader_images};
  }
  return batch;
}

}  // namespace

RunSetup::RunSetup(const config::Config& config, Communicator& comm, const RunParts& parts)
    : model_config(model_config_from(config)) {
  threads = cpu::set_threads(config.train().threads(), comm.info().local_size);
  const int rank = comm.rank(), world = comm.world_size();
  if (parts.train_data) train_set = open_split(config, model_config, /*train=*/true);
  if (parts.test_data) test_set = open_split(config, model_config, /*train=*/false);
  if (train_set) {
    train_loader = std::make_unique<BatchLoader>(
        *train_set, loader_options(config, /*train=*/true, rank, world));
  }
  if (test_set) {
    test_loader = std::make_unique<BatchLoader>(
        *test_set, loader_options(config, /*train=*/false, rank, world));
  }
  if (!parts.model) return;

  // Activation buffers for the largest batch a forward pass of this rank sees.
  const RankBatch batch = largest_batch(config, parts, test_set.get(), world);
  // On cuda the model lives in GPU memory, which this estimate does not read.
  if (config.train().backend() == "cpu") {
    const int loaders = (train_loader ? 1 : 0) + (test_loader ? 1 : 0);
    check_memory(estimate_memory(config, model_config, batch, parts.training, loaders, world),
                 machine_memory_bytes(), comm.info().local_size);
  }
  backend = make_backend(backend_options_from(config, comm.info().local_rank));
  if (parts.profile) {
    auto profiling = std::make_unique<ProfilingBackend>(std::move(backend));
    profiler = profiling.get();
    backend = std::move(profiling);
  }
  const bool recompute = parts.training && config.train().recompute() == config::BLOCK;
  model = std::make_unique<VisionTransformer>(model_config, *backend, batch.images, config.seed(),
                                              recompute);
}

int training_micro_batch(const config::Config& config, int world) {
  const int global_batch = config.train().global_batch_size();
  if (global_batch % world != 0) {
    throw InputError("train.global_batch_size: " + std::to_string(global_batch) +
                     " is not divisible by the world size " + std::to_string(world));
  }
  const int per_rank = global_batch / world, micro = config.train().micro_batch_size();
  if (micro == 0) return per_rank;
  if (per_rank % micro != 0) {
    throw InputError("train.micro_batch_size: " + std::to_string(micro) +
                     " does not divide the per-rank batch " + std::to_string(per_rank) +
                     " (train.global_batch_size " + std::to_string(global_batch) + " / " +
                     std::to_string(world) + " ranks)");
  }
  return micro;
}

int64_t total_training_steps(const config::Config& config, int64_t steps_per_epoch) {
  const config::Train& train = config.train();
  return train.max_steps() > 0 ? train.max_steps() : train.epochs() * steps_per_epoch;
}

}  // namespace dgqa
