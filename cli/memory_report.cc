#include "cli/memory_report.h"

#include <cstdio>
#include <string>
#include <vector>

#include "trainer/run_setup.h"

namespace dgqa {
namespace {

constexpr double kMiB = 1 << 20;
constexpr double kGiB = 1 << 30;

// The four setups the plan compares: recompute NONE and BLOCK, each without and with ZeRO-1.
std::vector<RankSetup> plan_setups(const config::Config& config, int ranks) {
  RankSetup base;
  base.micro_batch = training_micro_batch(config, ranks);
  base.bf16 = config.model().precision() != config::FP32;
  base.weight_ema = config.train().ema_decay() > 0;
  base.ranks = ranks;
  std::vector<RankSetup> setups;
  for (const bool recompute : {false, true}) {
    for (const int zero_stage : {0, 1}) {
      RankSetup setup = base;
      setup.recompute = recompute;
      setup.zero_stage = zero_stage;
      setups.push_back(setup);
    }
  }
  return setups;
}

void print_plan(const nlohmann::json& plan) {
  const double device_gib = plan["device_memory_bytes"].get<double>() / kGiB;
  std::printf("%s (%.1fM parameters), %d rank(s), %s, %.1f GiB per device\n",
              plan["model"].get<std::string>().c_str(), plan["parameters"].get<double>() / 1e6,
              plan["ranks"].get<int>(), plan["precision"].get<std::string>().c_str(), device_gib);
  const std::string title =
      "memory per rank in GiB at micro-batch " + std::to_string(plan["micro_batch"].get<int>());
  std::printf("  %-77s | largest micro-batch\n", title.c_str());
  std::printf("  %-9s %4s %10s %9s %9s %11s %9s %9s | in %.1f GiB\n", "recompute", "ZeRO",
              "parameters", "gradients", "optimizer", "activations", "workspace", "total",
              device_gib);
  for (const nlohmann::json& row : plan["rows"]) {
    const nlohmann::json& at = row["at_micro_batch"];
    std::printf(
        "  %-9s %4d %10.2f %9.2f %9.2f %11.2f %9.2f %9.2f | %d\n",
        at["recompute"].get<std::string>().c_str(), at["zero_stage"].get<int>(),
        at["parameters_bytes"].get<double>() / kGiB, at["gradients_bytes"].get<double>() / kGiB,
        at["optimizer_bytes"].get<double>() / kGiB, at["activations_bytes"].get<double>() / kGiB,
        at["workspace_bytes"].get<double>() / kGiB, at["total_bytes"].get<double>() / kGiB,
        row["largest_micro_batch"].get<int>());
  }
  std::fflush(stdout);
}

}  // namespace

nlohmann::json memory_json(const ModelConfig& model, const RankSetup& setup) {
  const RankMemory memory = rank_memory(model, setup);
  return {{"micro_batch", setup.micro_batch},
          {"recompute", setup.recompute ? "BLOCK" : "NONE"},
          {"precision", setup.bf16 ? "bf16" : "fp32"},
          {"weight_ema", setup.weight_ema},
          {"ranks", setup.ranks},
          {"zero_stage", setup.zero_stage},
          {"parameters_bytes", memory.parameters},
          {"gradients_bytes", memory.gradients},
          {"optimizer_bytes", memory.optimizer},
          {"activations_bytes", memory.activations},
          {"workspace_bytes", memory.workspace},
          {"total_bytes", memory.total()}};
}

std::string memory_text(const nlohmann::json& memory) {
  char text[512];
  std::snprintf(text, sizeof(text),
                "memory per rank, computed (%g images a pass, recompute %s, %s, ZeRO %d): %.1f "
                "MiB = parameters %.1f + gradients %.1f + optimizer %.1f + activations %.1f + "
                "workspace %.1f MiB",
                memory["micro_batch"].get<double>(), memory["recompute"].get<std::string>().c_str(),
                memory["precision"].get<std::string>().c_str(), memory["zero_stage"].get<int>(),
                memory["total_bytes"].get<double>() / kMiB,
                memory["parameters_bytes"].get<double>() / kMiB,
                memory["gradients_bytes"].get<double>() / kMiB,
                memory["optimizer_bytes"].get<double>() / kMiB,
                memory["activations_bytes"].get<double>() / kMiB,
                memory["workspace_bytes"].get<double>() / kMiB);
  return text;
}

void plan_command(const CommandLine& line, const config::Config& config) {
  const ModelConfig model = model_config_from(config);
  const double bytes = line.plan_device_gib * kGiB;
  nlohmann::json rows = nlohmann::json::array();
  for (const RankSetup& setup : plan_setups(config, line.plan_ranks)) {
    rows.push_back({{"largest_micro_batch", largest_micro_batch(model, setup, bytes)},
                    {"at_micro_batch", memory_json(model, setup)}});
  }
  char name[160];
  std::snprintf(name, sizeof(name), "%s ViT %dx%d patch %d, D %d, depth %d, H %d, G %d",
                attention_scheme_name(model.attention), model.image_size, model.image_size,
                model.patch_size, model.embed_dim, model.depth, model.num_heads,
                model.num_kv_heads);
  const nlohmann::json plan = {{"model", name},
                               {"parameters", parameter_count(model).total()},
                               {"ranks", line.plan_ranks},
                               {"device_memory_bytes", bytes},
                               {"precision", rows[0]["at_micro_batch"]["precision"]},
                               {"micro_batch", training_micro_batch(config, line.plan_ranks)},
                               {"zero1_implemented", false},
                               {"rows", rows}};
  if (line.json) {
    std::printf("%s\n", plan.dump().c_str());
    std::fflush(stdout);
    return;
  }
  print_plan(plan);
}

}  // namespace dgqa
