// The training loop: the training step (trainer/training_step.h) over the epochs, with the
// metrics, sharded evaluations, checkpoints, stop requests and the final weights
// (docs/design.md §3.6, §5, §6).
#pragma once

#include <string>

#include "comm/communicator.h"
#include "trainer/config.h"

namespace dgqa {

struct TrainOptions {
  std::string out_dir;    // receives metrics.jsonl and model.safetensors; empty = nothing written
  std::string init_from;  // weights to start from; empty = fresh initialisation from the seed
  std::string resume;     // "auto", a checkpoint directory, or empty (a fresh start)
};

// Trains as `config` says, this process being one rank of `comm`. Throws InputError for bad
// data, weights or checkpoints before the first step, and StoppedOnRequest (trainer/preemption.h)
// after the checkpoint of a stop signal.
void run_training(const config::Config& config, const TrainOptions& options, Communicator& comm);

}  // namespace dgqa
