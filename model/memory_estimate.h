// The memory a model needs, counted analytically in double so that no shape overflows the
// count: the up-front check of a run (trainer/memory_check.h) refuses what cannot fit.
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

// The floats of VisionTransformer's activation and scratch buffers for `batch` images per
// forward pass (the per-block terms dominate: B T D for the residual streams, B H T^2 for the
// attention probabilities, B T 4D for the MLP); with `recompute`, one block's activations besides
// every block's input.
double activation_floats(const ModelConfig& config, double batch, bool recompute = false);

}  // namespace dgqa
