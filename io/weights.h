// The model's weights as a safetensors file with the tensor names of docs/design.md §4,
// which PyTorch loads with safetensors.torch.load_file.
#pragma once

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

// InputError naming the file, the tensor and the first non-finite value (NaN or +-Inf), if any:
// such a value would only make every loss NaN.
void check_finite(const std::vector<float>& values, const std::string& path,
                  const std::string& name);

// What load_weights does with a head for another number of classes than the model's.
enum class OtherHead {
  kRefuse,        // an InputError like any mis-shaped tensor (evaluation, resuming)
  kReinitialise,  // keep the model's own fresh head, with a warning (fine-tuning from weights
                  // pretrained on another dataset: --init-from, convert)
};

// Loads a file written by save_weights (or by another program with the same names), or a timm
// ViT checkpoint, which it converts to the model's K/V heads on the way (io/timm_import.h).
// A missing, extra or mis-shaped tensor is an InputError naming the file and the tensor, except
// a head for another number of classes under OtherHead::kReinitialise. The DGQA state tensors
// are optional: a DGQA model loads them when present, other schemes ignore them.
void load_weights(VisionTransformer& model, const std::string& path,
                  OtherHead other_head = OtherHead::kRefuse);
void load_weights(VisionTransformer& model, const SafetensorsFile& file,
                  OtherHead other_head = OtherHead::kRefuse);

}  // namespace dgqa
