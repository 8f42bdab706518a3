// The CUDA backend's BF16 arithmetic emulated on the CPU, and how far a BF16 model may be from
// the fp32 one.
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
#include "tests/model_runs.h"

namespace dgqa::tests {

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
  void apply_jitter(float* x, int64_t n);

  float jitter_;
  uint32_t jitter_state_ = 2463534242u;
};

// The GPU's BF16 model against the CPU's fp32 one: bf16 operands (2^-8 relative) in the ~10
// products between image and loss and back, with fp32 attention, LayerNorm and softmax between.
inline constexpr RunTolerance kBf16VersusFp32 = {2e-2, 3e-2, 1e-3, 5e-2, 1e-5, 1e-1, 1e-5};

}  // namespace dgqa::tests
