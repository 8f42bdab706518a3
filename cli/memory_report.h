// The per-rank training memory of model/memory_estimate.h as `dgqa bench` reports it next to
// the measured peak, and `dgqa bench --plan`: the largest micro-batch that fits a device, with
// and without recompute and ZeRO-1, computed without running anything (docs/performance.md).
// ZeRO-1 is counted analytically only: dgqa does not implement it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "cli/command_line.h"
#include "model/memory_estimate.h"
#include "trainer/config.h"

namespace dgqa {

// The setup's breakdown as JSON: micro_batch, recompute, precision, weight_ema, ranks, zero_stage
// and each kind's bytes (parameters_bytes ... workspace_bytes, total_bytes).
nlohmann::json memory_json(const ModelConfig& model, const RankSetup& setup);

// "memory per rank, computed (8 images a pass, ...): X MiB = parameters ... + workspace Y MiB"
std::string memory_text(const nlohmann::json& memory);

// --plan: for the config's model, line.plan_ranks ranks and line.plan_device_gib of memory per
// device, prints the breakdown at the config's micro-batch (train.micro_batch_size, else
// train.global_batch_size / ranks) and the largest micro-batch that fits, for recompute NONE and
// BLOCK x ZeRO 0 and 1. The device is a GPU: bf16 unless model.precision is FP32. One JSON
// object instead with --json.
void plan_command(const CommandLine& line, const config::Config& config);

}  // namespace dgqa
