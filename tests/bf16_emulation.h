// The CUDA backend's BF16 arithmetic emulated on the CPU, and the comparison of whole-model runs
// that the BF16 tests share.
//
// Bf16ProductsCpuBackend is the CPU backend with its matrix products fed what the CUDA BF16
// products are fed (kernels/cuda/cuda_backend.cu, matmul.cu): every operand rounded to bf16
// (round_to_bf16, the device cast's rounding), fp32 accumulation and fp32 results, the bias added
// in fp32, dbias summed from the fp32 dout. Every other kernel is the CPU's fp32 one, as on the
// GPU. On the CPU (bf16_emulation_test), it measures how far bf16 products take the model from
// fp32, which is what the GPU's BF16 model test (cuda_bf16_test) must tolerate.
//
// The GPU adds in other orders than the CPU. jitter stands in for that on the CPU: each
// product's result (or gradient increment) is multiplied by 1 + e, e drawn uniformly from
// [-jitter, jitter] by a fixed stream, so a test can measure how much such differences grow
// through the model. (They grow to the size of bf16's own rounding errors within a layer or
// two, whatever their initial size: one changed bit can move an operand across a bf16 rounding
// boundary. So this emulation is no closer a reference for the GPU than fp32 is.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "model/vit.h"

namespace dgqa::testing {

class Bf16ProductsCpuBackend : public CpuBackend {
 public:
  explicit Bf16ProductsCpuBackend(float jitter = 0.f) : jitter_(jitter) {}

  Precision precision() const override { return Precision::kBF16; }
  void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                      int C, int OC) override;
  void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, int N, int C, int OC) override;

 private:
  // Multiplies each of x[0, n) by 1 + e (nothing when jitter is 0).
  void Jitter(float* x, int64_t n);

  float jitter_;
  uint32_t jitter_state_ = 2463534242u;
};

// What a test compares between two runs of the same model: the initial parameters, the loss, the
// logits, every gradient, and the allocation of each layer (KDGQA, DGQA).
struct ModelRun {
  std::vector<float> initial_params;
  double loss = 0;
  std::vector<float> logits, grads;
  std::vector<std::vector<int>> allocations;
};

// The model the BF16 tests use: 32x32x3 images, patch 8, D 64, depth 2, H 4 (G 2; MHA: 4),
// DGQA window 1.
ModelConfig Bf16TestModel(AttentionScheme scheme);

// One forward and backward of a fresh Bf16TestModel (initialised from a fixed seed, so the same
// on every backend) on 4 fixed random images.
ModelRun RunBf16TestModel(Backend& backend, AttentionScheme scheme);

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
ToleranceUse CompareRuns(const ModelRun& actual, const ModelRun& expected,
                         const RunTolerance& tolerance, const ParamLayout& layout);

// The GPU's BF16 model against the CPU's fp32 one: bf16 operands (2^-8 relative) in the ~10
// products between image and loss and back, with fp32 attention, LayerNorm and softmax between.
inline constexpr RunTolerance kBf16VersusFp32 = {2e-2, 3e-2, 1e-3, 5e-2, 1e-5, 1e-1, 1e-5};

}  // namespace dgqa::testing
