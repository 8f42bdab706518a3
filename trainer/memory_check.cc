#include "trainer/memory_check.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "trainer/batch_mixer.h"

namespace dgqa {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Parameter-sized float buffers at the peak of a run (measured with /usr/bin/time on CPU runs
// whose parameters dominate): training 10 (parameters, gradients, two moments, and the host
// copies of weights and moments a checkpoint is written from), evaluation 5 (parameters,
// gradients, and the copies made while reading the weights file).
constexpr double kTrainingCopies = 10;
constexpr double kEvaluationCopies = 5;
// A weight EMA (train.ema_decay) adds its buffer and, while it is evaluated or checkpointed,
// host copies of it and of the weights (counted, not measured).
constexpr double kWeightEmaCopies = 3;
// Of the training copies, AdamW's two moments and their checkpoint copies: one shard of each
// per rank under ZeRO-1.
constexpr double kMomentCopies = 4;

// Host memory per transformer block beyond its tensors (names, shapes, DGQA state, metrics):
// about 35 KB each, measured at depth 20000.
constexpr double kBytesPerBlock = 32 * 1024;

// Batches a loader holds at once: the prefetched ones, the one in use, two spare buffers.
constexpr int kBatchesBesidesPrefetch = 3;
// Mixup's copies of a training share: the mixed images and the partner rank's.
constexpr int kMixupBatches = 2;

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f GiB", bytes / kGiB);
  return text;
}

std::string count_text(double count) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.0f", count);
  return text;
}

// The fields behind the largest part of the estimate.
std::string driving_fields(const MemoryNeed& need) {
  const std::string shape = "model.image_size / model.patch_size, model.embed_dim";
  const double model_bytes = need.weight_bytes + need.bookkeeping_bytes;
  if (need.activation_bytes >= model_bytes && need.activation_bytes >= need.input_bytes) {
    return need.batch.field + ", " + shape + ", model.depth";
  }
  if (need.input_bytes >= model_bytes) {
    return need.batch.field + ", data.prefetch_batches, model.image_size";
  }
  const ParameterCount& p = need.parameters;
  if (p.blocks >= p.embedding && p.blocks >= p.head) return "model.embed_dim, model.depth";
  if (p.head >= p.embedding) return "model.num_classes, model.embed_dim";
  return shape + ", model.in_channels";
}

}  // namespace

MemoryNeed estimate_memory(const config::Config& config, const ModelConfig& model,
                           const RankBatch& batch, bool training, int loaders, int world_size) {
  MemoryNeed need;
  need.batch = batch;
  need.parameters = parameter_count(model);
  double copies = kEvaluationCopies;
  if (training) {
    copies = kTrainingCopies + (config.train().ema_decay() > 0 ? kWeightEmaCopies : 0);
    if (config.dist().zero_stage() == 1) copies -= kMomentCopies * (1 - 1.0 / world_size);
  }
  need.weight_bytes = copies * 4.0 * need.parameters.total();
  need.bookkeeping_bytes = kBytesPerBlock * model.depth;
  need.activation_bytes =
      4.0 * activation_floats(model, batch.images,
                              training && config.train().recompute() == config::BLOCK);
  const double image_floats =
      static_cast<double>(model.in_channels) * model.image_size * model.image_size;
  const double batches = config.data().prefetch_batches() + kBatchesBesidesPrefetch;
  const double loader_images = std::max(batch.images, batch.loader_images);
  need.input_bytes = 4.0 * loaders * batches * loader_images * image_floats;
  if (training && mixup_settings_from(config).enabled()) {
    need.input_bytes += 4.0 * kMixupBatches * loader_images * image_floats;
  }
  return need;
}

double machine_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string name, unit;
    double kib = 0;
    if (fields >> name >> kib >> unit && name == "MemTotal:" && unit == "kB") return kib * 1024;
  }
  return 0;
}

void check_memory(const MemoryNeed& need, double available_bytes, int ranks_on_machine) {
  const double machine_need = need.total_bytes() * ranks_on_machine;
  if (available_bytes <= 0 || machine_need <= available_bytes) return;
  const std::string needed = ranks_on_machine == 1
                                 ? "the run needs about " + gib(machine_need)
                                 : "the " + std::to_string(ranks_on_machine) +
                                       " ranks on this machine need about " + gib(machine_need) +
                                       " (" + gib(need.total_bytes()) + " each)";
  throw InputError(
      driving_fields(need) + ": " + needed + " of memory, more than this machine's " +
      gib(available_bytes) + (ranks_on_machine == 1 ? " (MemTotal): " : " (MemTotal); per rank: ") +
      gib(need.weight_bytes + need.bookkeeping_bytes) + " for " +
      count_text(need.parameters.total()) +
      " parameters (with gradients, optimizer state, host copies and per-block bookkeeping), " +
      gib(need.activation_bytes) + " of activations for " + std::to_string(need.batch.images) +
      " images a pass (" + need.batch.field + "), " + gib(need.input_bytes) + " of input batches");
}

}  // namespace dgqa
