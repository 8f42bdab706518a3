// The training loop: data -> forward -> backward -> AdamW, with evaluation, metrics and the
// final weights (design.md 3.6 and 5).
#pragma once

#include <string>

#include "trainer/config.h"

namespace dgqa {

struct TrainOptions {
  std::string out_dir;    // receives metrics.jsonl and model.safetensors; empty = nothing written
  std::string init_from;  // weights to start from; empty = fresh initialisation from the seed
};

// Trains as `config` says. Throws InputError for bad data or weights before the first step.
void run_training(const config::Config& config, const TrainOptions& options);

}  // namespace dgqa
