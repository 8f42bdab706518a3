// The up-front estimate of the memory a run needs (docs/configs.md "What is checked"): a config
// whose model or batches cannot fit in this machine's memory is refused before any work, with
// the estimate and the fields that drive it, instead of ending in std::bad_alloc.
#pragma once

#include <string>

#include "model/memory_estimate.h"
#include "trainer/config.h"

namespace dgqa {

// The largest batch one forward pass of this rank runs, and the field it comes from.
struct RankBatch {
  int images = 0;
  std::string field;  // train.micro_batch_size, train.global_batch_size or train.eval_batch_size
  int loader_images = 0;  // the largest batch a loader hands this rank, when more than images
};

// What a run needs in host memory (CPU backend), in bytes.
struct MemoryNeed {
  ParameterCount parameters;
  // The parameters and gradients, AdamW's two moments in training, and the host copies made
  // to load weights and to write the model and checkpoints: at the peak, measured, 10
  // parameter-sized buffers in training and 5 in evaluation.
  double weight_bytes = 0;
  double bookkeeping_bytes = 0;  // per block: tensor names and shapes, allocator state
  double activation_bytes = 0;   // activations and scratch for batch.images per pass
  double input_bytes = 0;        // the image batches the loaders hold (prefetched and in use)
  RankBatch batch;
  double total_bytes() const {
    return weight_bytes + bookkeeping_bytes + activation_bytes + input_bytes;
  }
};

// `loaders` is how many batch loaders (training, test) hold batches of up to
// max(batch.images, batch.loader_images) images; `world_size` divides AdamW's moments (and
// their checkpoint copies) under dist.zero_stage 1.
MemoryNeed estimate_memory(const config::Config& config, const ModelConfig& model,
                           const RankBatch& batch, bool training, int loaders, int world_size);

// MemTotal of /proc/meminfo in bytes; 0 when it cannot be read.
double machine_memory_bytes();

// Throws InputError when the need of the ranks_on_machine ranks that share this machine's memory
// (each needing need.total_bytes()) exceeds available_bytes (0: unknown, no check). The message
// starts with the fields behind the largest part of the estimate.
void check_memory(const MemoryNeed& need, double available_bytes, int ranks_on_machine);

}  // namespace dgqa
