#include "model/memory_estimate.h"

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

double activation_floats(const ModelConfig& config, double batch, bool recompute) {
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
                         8 * B * e.D + 3 * B * e.K + 4 * B;
  const double scratch = BT * (5 * e.D + 2 * e.kv + 2 * e.F);
  const double drop_path = config.drop_path_rate > 0 ? config.depth * 2 * B + BT * e.D : 0;
  return blocks + outside + scratch + drop_path;
}

}  // namespace dgqa
