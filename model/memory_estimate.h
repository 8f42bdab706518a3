// The memory a model needs, counted analytically in double so that no shape overflows the
// count: the up-front check of a run (trainer/memory_check.h) refuses what cannot fit, and
// `dgqa bench` reports (and `dgqa bench --plan` plans with) the per-rank breakdown of training.
#pragma once

#include "model/model_config.h"

namespace dgqa {

// The parameters of ParamLayout in three parts.
struct ParameterCount {
  double embedding = 0;  // patch embedding, class token, position embedding
  double blocks = 0;     // depth x (2 LayerNorms, Q, K, V, output projection, MLP D -> 4D -> D)
  double head = 0;       // final norm and the classifier
  double total() const { return embedding + blocks + head; }
};
ParameterCount parameter_count(const ModelConfig& config);

// The floats of VisionTransformer's activation buffer for `batch` images per forward pass, in
// two parts: what the passes keep (the per-block terms dominate: B T D for the residual streams,
// B H T^2 for the attention probabilities, B T 4D for the MLP; with `recompute`, one block's
// activations besides every block's input) and the scratch each pass overwrites.
struct ActivationFloats {
  double kept = 0;
  double scratch = 0;
  double total() const { return kept + scratch; }
};
ActivationFloats activation_parts(const ModelConfig& config, double batch, bool recompute);
double activation_floats(const ModelConfig& config, double batch, bool recompute = false);

// How one rank trains, for the breakdown below.
struct RankSetup {
  double micro_batch = 1;   // images per forward pass on the rank
  bool recompute = false;   // train.recompute BLOCK
  bool bf16 = false;        // model.precision BF16 (CUDA): the products read a bf16 weight copy
  bool weight_ema = false;  // train.ema_decay > 0: an fp32 moving average of the weights
  int ranks = 1;
  // 1: ZeRO-1 (dist.zero_stage 1): AdamW's moments divided by the ranks.
  int zero_stage = 0;
};

// Bytes one training rank holds for its model, by kind. Not counted: the CUDA context, the
// cuBLASLt workspace (32 MiB on Hopper), NCCL's buffers and, on the host, the program, its
// libraries, the input batches and the copies a checkpoint is written from.
struct RankMemory {
  double parameters = 0;  // fp32 weights; under bf16 the bf16 copy the products read
  double gradients = 0;   // fp32, whole on every rank (ZeRO-1 does not divide them)
  // AdamW's two fp32 moments (divided by the ranks under ZeRO-1); under bf16 also the fp32
  // weights the products' bf16 copy is cast from (whole on every rank: they are the parameters,
  // which ZeRO-1 gathers); the weight EMA's fp32 buffer, whole on every rank.
  double optimizer = 0;
  double activations = 0;  // what the forward pass keeps for backward (activation_parts.kept)
  double workspace = 0;    // the passes' scratch; under bf16 also the products' cast operands
  double total() const { return parameters + gradients + optimizer + activations + workspace; }
};
RankMemory rank_memory(const ModelConfig& config, const RankSetup& setup);

// The largest micro-batch (setup.micro_batch is ignored) whose rank_memory total is at most
// `bytes`; 0 when one image does not fit.
int largest_micro_batch(const ModelConfig& config, RankSetup setup, double bytes);

}  // namespace dgqa
