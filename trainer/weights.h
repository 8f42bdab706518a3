// The model's weights as a safetensors file with the tensor names of design.md section 4,
// which PyTorch loads with safetensors.torch.load_file.
#pragma once

#include <string>

#include "model/vit.h"

namespace dgqa {

// Writes every parameter (F32) and, for DGQA schemes, each layer's cache (F32) and
// allocation (I64). Atomic: a reader sees the old file or the complete new one.
void save_weights(const VisionTransformer& model, const std::string& path);

// Loads a file written by save_weights (or by another program with the same names). A missing,
// extra or mis-shaped tensor is an InputError naming the file and the tensor. The DGQA state
// tensors are optional: a DGQA model loads them when present, other schemes ignore them.
void load_weights(VisionTransformer& model, const std::string& path);

}  // namespace dgqa
