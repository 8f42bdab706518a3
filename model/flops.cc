#include "model/flops.h"

namespace dgqa {

double forward_flops_per_image(const ModelConfig& c) {
  const double T = c.num_tokens(), N = c.num_patches(), D = c.embed_dim, F = c.mlp_dim();
  const double kv_width = static_cast<double>(c.num_kv_heads) * c.head_dim();
  const double patch_inputs = static_cast<double>(c.in_channels) * c.patch_size * c.patch_size;
  const double per_block = 2 * T * D * (D + 2 * kv_width)  // Q, K, V
                           + 2 * T * D * D                 // output projection
                           + 2 * 2 * T * D * F             // MLP
                           + 2 * 2 * T * T * D;            // attention products
  return 2 * N * patch_inputs * D + c.depth * per_block + 2 * D * c.num_classes;
}

double training_flops_per_image(const ModelConfig& config) {
  return 3 * forward_flops_per_image(config);
}

}  // namespace dgqa
