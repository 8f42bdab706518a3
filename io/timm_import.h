// Import of timm ViT checkpoints (docs/design.md §3.5 and §4). timm names its tensors as we do,
// except that each block's attention has one fused projection, attn.qkv (3D, D), where we have
// attn.q (D, D) and attn.k, attn.v (G*d, D). A timm checkpoint is multi-head (G = H): converting it
// to fewer K/V heads averages each contiguous group of H / G heads, as the paper up-trains MHA
// models into GQA-family models.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/model_config.h"

namespace dgqa {

// A tensor held as floats, whatever its dtype in the file.
struct FloatTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Tensors by name (our names, docs/design.md §4).
using FloatTensors = std::map<std::string, FloatTensor>;

// "(3, 4)": a shape as error messages write it.
std::string shape_text(const std::vector<int64_t>& shape);

// Whether the file is in timm's layout: it holds the fused blocks.0.attn.qkv.weight.
bool is_timm_checkpoint(const SafetensorsFile& file);

// The file's parameters under our names for a model of `config`: each block's attn.qkv split
// into q, k and v, with k and v mean-pooled from H to G heads (means computed in double); every
// other tensor as it is. InputError, naming the file, when H % G != 0 (names
// model.num_kv_heads), when a block's attn.qkv is missing or has another shape than (3D, D),
// or when the file holds a tensor that a timm ViT of this shape does not have (such as
// fc_norm.weight, or our split attn.q). The shapes of the other tensors are left to the caller.
FloatTensors import_timm(const SafetensorsFile& file, const ModelConfig& config);

}  // namespace dgqa
