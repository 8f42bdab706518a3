// The model's weights as a safetensors file with the tensor names of docs/design.md §4,
// which PyTorch loads with safetensors.torch.load_file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/vit.h"

namespace dgqa {

// Whether the scheme keeps DGQA state (each layer's cache and allocation) in its weights.
bool has_dgqa_state(AttentionScheme scheme);

// Writes every parameter (F32) and, for DGQA schemes, each layer's cache (F32) and
// allocation (I64). Atomic: a reader sees the old file or the complete new one.
void save_weights(const VisionTransformer& model, const std::string& path);
// The same with `params` (layout order, such as a weight EMA) in place of the model's parameters.
void save_weights(const VisionTransformer& model, const std::vector<float>& params,
                  const std::string& path);

// InputError naming the file, the tensor and the first non-finite value (NaN or +-Inf), if any:
// such a value would only make every loss NaN.
void check_finite(const std::vector<float>& values, const std::string& path,
                  const std::string& name);

// What a weights file records of its model by itself (docs/design.md §4).
struct WeightsShape {
  // The shape read off the tensors. Unless heads_known, num_heads and num_kv_heads are
  // stand-ins: the fewest heads that give the recorded K/V width (enough to check the tensors).
  ModelConfig model;
  bool scheme_known = false;  // the metadata dgqa_attention names it; a timm file is MHA
  bool heads_known = false;   // H and G from a DGQA file's allocation: G counts summing to H
  bool timm = false;          // timm's layout, with the fused attn.qkv
  int64_t kv_width = 0;       // G * d, the rows of attn.k and attn.v (timm: D)
};

// D, C and p from patch_embed.proj.weight, the image size from pos_embed, the depth from the
// blocks, the K/V width from attn.k, the classes from head.weight, the scheme from the metadata.
// A weights file has no record of H and G themselves, except through a DGQA allocation. InputError
// naming the file when it is not a ViT's weights (one of these tensors missing or impossible);
// the rest (the MLP width, every other tensor) is load_weights' to check.
WeightsShape weights_shape(const SafetensorsFile& file);

// What load_weights does with a head for another number of classes than the model's.
enum class OtherHead {
  kRefuse,        // an InputError like any mis-shaped tensor (evaluation, resuming)
  kReinitialise,  // keep the model's own fresh head, with a warning (fine-tuning from weights
                  // pretrained on another dataset: --init-from, convert)
};

// What load_weights does with a pos_embed for another patch grid than the model's.
enum class OtherGrid {
  kRefuse,    // an InputError like any mis-shaped tensor (resuming, inspect)
  kResample,  // resample it to the model's grid, with a log line (io/pos_embed.h: --init-from,
              // convert)
};

// Loads a file written by save_weights (or by another program with the same names), or a timm
// ViT checkpoint, which it converts to the model's K/V heads on the way (io/timm_import.h).
// A missing, extra or mis-shaped tensor is an InputError naming the file and the tensor, except
// a head for another number of classes under OtherHead::kReinitialise and a pos_embed for
// another grid under OtherGrid::kResample. The DGQA state tensors are optional: a DGQA model
// loads them when present, other schemes ignore them.
void load_weights(VisionTransformer& model, const std::string& path,
                  OtherHead other_head = OtherHead::kRefuse,
                  OtherGrid other_grid = OtherGrid::kRefuse);
void load_weights(VisionTransformer& model, const SafetensorsFile& file,
                  OtherHead other_head = OtherHead::kRefuse,
                  OtherGrid other_grid = OtherGrid::kRefuse);

}  // namespace dgqa
