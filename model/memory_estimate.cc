#include "model/memory_estimate.h"

#include <algorithm>

namespace dgqa {
namespace {

// The shape as doubles.
struct Extents {
  double D, F, kv, H, d, K, C, S, p, N, T;
  explicit Extents(const ModelConfig& c)
      : D(c.embed_dim),
        F(4.0 * c.embed_dim),
        kv(static_cast<double>(c.num_kv_heads) * c.head_dim()),
        H(c.num_heads),
        d(c.head_dim()),
        K(c.num_classes),
        C(c.in_channels),
        S(c.image_size),
        p(c.patch_size),
        N(static_cast<double>(c.image_size / c.patch_size) * (c.image_size / c.patch_size)),
        T(N + 1) {}
};

}  // namespace

ParameterCount parameter_count(const ModelConfig& config) {
  const Extents e(config);
  const double block = 4 * e.D                 // two LayerNorms
                       + (e.D + 1) * e.D       // Q
                       + 2 * (e.D + 1) * e.kv  // K, V
                       + (e.D + 1) * e.D       // output projection
                       + (e.D + 1) * e.F       // fc1
                       + (e.F + 1) * e.D;      // fc2
  ParameterCount count;
  count.embedding = (e.C * e.p * e.p + 1) * e.D + e.D + e.T * e.D;
  count.blocks = config.depth * block;
  count.head = 2 * e.D + (e.D + 1) * e.K;
  return count;
}

ActivationFloats activation_parts(const ModelConfig& config, double batch, bool recompute) {
  const Extents e(config);
  const double B = batch, BT = B * e.T;
  const bool pgqa = config.attention == AttentionScheme::kPGQA;
  // Each block keeps its input (the residual stream) and its PGQA noise; its attention and MLP
  // activations are one shared set with recomputation (all B*T rows), else each block's own
  // (the last block's MLP rows: B only).
  const double kept = BT * e.D + (pgqa ? e.H * e.T * e.d : 0);
  const double attention =
      BT * (3 * e.D + 2 * e.kv + 2) + B * e.H * e.T * e.T + (pgqa ? BT * e.D + 2 * B * e.H : 0);
  const double mlp_rows = BT * (2 * e.D + 2 * e.F + 2);
  const double blocks = recompute ? config.depth * kept + attention + mlp_rows
                                  : config.depth * (kept + attention) +
                                        (config.depth - 1) * mlp_rows + B * (2 * e.D + 2 * e.F + 2);
  const double outside = B * e.C * e.S * e.S + B * e.N * e.C * e.p * e.p + 2 * B * e.N * e.D +
                         8 * B * e.D + 3 * B * e.K + 6 * B;
  ActivationFloats floats;
  // Drop path keeps each block's per-image branch scales and scales a branch's gradient into a
  // scratch of B*T rows.
  const bool drop_path = config.drop_path_rate > 0;
  floats.kept = blocks + outside + (drop_path ? config.depth * 2 * B : 0);
  floats.scratch = BT * (5 * e.D + 2 * e.kv + 2 * e.F) + (drop_path ? BT * e.D : 0);
  return floats;
}

double activation_floats(const ModelConfig& config, double batch, bool recompute) {
  return activation_parts(config, batch, recompute).total();
}

RankMemory rank_memory(const ModelConfig& config, const RankSetup& setup) {
  const Extents e(config);
  const double P = parameter_count(config).total(), B = setup.micro_batch;
  const double shard = setup.zero_stage == 1 ? setup.ranks : 1;
  const ActivationFloats floats = activation_parts(config, B, setup.recompute);
  RankMemory memory;
  memory.parameters = (setup.bf16 ? 2 : 4) * P;
  memory.gradients = 4 * P;
  memory.optimizer = 8 * P / shard + (setup.bf16 ? 4 * P : 0) + (setup.weight_ema ? 4 * P : 0);
  memory.activations = 4 * floats.kept;
  memory.workspace = 4 * floats.scratch;
  // The bf16 casts of the largest product input (the patch embedding's or fc2's) and of the
  // largest output gradient (fc1's), kernels/cuda/bf16_weights.h.
  if (setup.bf16) {
    memory.workspace += 2 * B * (std::max(e.N * e.C * e.p * e.p, e.T * e.F) + e.T * e.F);
  }
  return memory;
}

int largest_micro_batch(const ModelConfig& config, RankSetup setup, double bytes) {
  auto fits = [&](int batch) {
    setup.micro_batch = batch;
    return rank_memory(config, setup).total() <= bytes;
  };
  if (!fits(1)) return 0;
  int low = 1, high = 2;  // low fits; high doubles until it does not (or reaches 2^30)
  while (high < (1 << 30) && fits(high)) {
    low = high;
    high *= 2;
  }
  if (fits(high)) return high;
  while (high - low > 1) {
    const int middle = low + (high - low) / 2;
    if (fits(middle)) {
      low = middle;
    } else {
      high = middle;
    }
  }
  return low;
}

}  // namespace dgqa
