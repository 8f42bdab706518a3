// One forward and backward of a small ViT on a given backend, and the comparison of two such
// runs: what the whole-model tests of the CUDA backend (fp32 and bf16) and of the bf16 emulation
// share.
#pragma once

#include <string>
#include <vector>

#include "kernels/backend.h"
#include "model/vit.h"

namespace dgqa::tests {

// What a test compares between two runs of the same model: the initial parameters, the loss, the
// logits, every gradient, and the allocation of each layer (KDGQA, DGQA).
struct ModelRun {
  std::vector<float> initial_params;
  double loss = 0;
  std::vector<float> logits, grads;
  std::vector<std::vector<int>> allocations;
};

// The model the whole-model tests use: 32x32x3 images, patch 8, D 64, depth 2, H 4 (G 2; MHA: 4),
// DGQA window 1, the given drop path rate.
ModelConfig small_test_model(AttentionScheme scheme, float drop_path_rate = 0.f);

// One training forward (step 0) and backward of a fresh small_test_model with the given drop
// path rate (initialised from a fixed seed, so the same on every backend) on 4 fixed random
// images; with `recompute`, each block recomputed before its backward (train.recompute BLOCK);
// with `mixed_targets`, label smoothing 0.1 and the Mixup/CutMix targets of fixed second labels
// and weights.
ModelRun run_small_test_model(Backend& backend, AttentionScheme scheme, float drop_path_rate = 0.f,
                              bool recompute = false, bool mixed_targets = false);

// How far one run may be from another, each error relative to the reference's own scale:
//   loss:      |error| <= loss_rel * |loss|
//   logits:    |error| <= logit_rel * (largest |logit|) + logit_abs, element-wise
//   gradients: per tensor, L2 norm of the error <= grad_norm_rel * (gradient's L2 norm)
//              + grad_norm_abs * sqrt(elements) (for tensors whose gradient is ~0: the key
//              bias, which the softmax ignores), and element-wise |error| <= grad_elem_rel *
//              (tensor's largest |gradient|) + grad_elem_abs.
struct RunTolerance {
  double loss_rel, logit_rel, logit_abs, grad_norm_rel, grad_norm_abs, grad_elem_rel, grad_elem_abs;
};

// The largest error of actual against expected as a fraction of its tolerance (at most 1 means
// within tolerance everywhere; NaN counts as infinite), and where it is. Different initial
// parameters or allocations give infinity.
struct ToleranceUse {
  double worst = 0;
  std::string where;
};
ToleranceUse compare_runs(const ModelRun& actual, const ModelRun& expected,
                          const RunTolerance& tolerance, const ParamLayout& layout);

}  // namespace dgqa::tests
