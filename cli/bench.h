// `dgqa bench`: training steps of the configured model, timed by phase, and
// `dgqa bench --data-only`: the data pipeline alone, and `dgqa bench --plan`: the largest
// micro-batch that fits a device (cli/memory_report.h) (docs/design.md §7).
#pragma once

#include "cli/command_line.h"
#include "comm/communicator.h"
#include "trainer/config.h"

namespace dgqa {

// Runs line.bench_warmup untimed steps, then line.bench_steps timed ones, through the training
// step `dgqa train` runs (trainer/training_step.h: the same optimizer settings, and each step's
// learning rate from the config's schedule), on one fixed synthetic batch or, with --real-data,
// on the config's training set in the order `dgqa train` takes it. Prints (rank 0) images/s,
// effective GFLOP/s (model/flops.h), milliseconds per step by phase, the loss of the timed steps,
// the memory per rank computed by kind (model/memory_estimate.h) and the measured peak; one JSON
// object instead with --json, whose "trajectory" lists each timed step's loss, gradient norm and
// learning rate. Under MPI every rank trains its shard of the global batch, as `dgqa train` does.
void bench_command(const CommandLine& line, const config::Config& config, Communicator& comm);

}  // namespace dgqa
