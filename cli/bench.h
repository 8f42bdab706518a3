// `dgqa bench`: training steps of the configured model on synthetic data, timed by phase, and
// `dgqa bench --data-only`: the data pipeline alone (docs/design.md §7, issue 6).
#pragma once

#include "comm/communicator.h"
#include "cli/command_line.h"
#include "trainer/config.h"

namespace dgqa {

// Runs line.bench_warmup untimed steps, then line.bench_steps timed ones, and prints (rank 0)
// images/s, effective GFLOP/s (model/flops.h), milliseconds per step by phase and the peak
// memory; one JSON object instead with --json. Under MPI every rank trains its shard of the
// global batch, as `dgqa train` does.
void bench_command(const CommandLine& line, const config::Config& config, Communicator& comm);

}  // namespace dgqa
