#include "tests/bf16_emulation.h"

#include <cstdint>
#include <memory>

#include "kernels/cuda/bf16.h"

namespace dgqa::tests {

namespace {

// A scratch array from the CPU backend's allocator: zeroed and 64-byte aligned like every buffer
// the model hands a product (OpenBLAS's results can depend on its operands' alignment, and the
// emulation must give the same bits on every run).
class Scratch {
 public:
  Scratch(Backend& backend, int64_t n)
      : backend_(backend), data_(static_cast<float*>(backend.allocate(sizeof(float) * n))) {}
  ~Scratch() { backend_.release(data_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* get() const { return data_; }

 private:
  Backend& backend_;
  float* data_;
};

// A scratch copy of x[0, n) rounded to bf16.
std::unique_ptr<Scratch> rounded_to_bf16(Backend& backend, const float* x, int64_t n) {
  auto rounded = std::make_unique<Scratch>(backend, n);
  for (int64_t i = 0; i < n; ++i) rounded->get()[i] = round_to_bf16(x[i]);
  return rounded;
}

}  // namespace

void Bf16ProductsCpuBackend::apply_jitter(float* x, int64_t n) {
  if (jitter_ == 0.f) return;
  for (int64_t i = 0; i < n; ++i) {
    jitter_state_ ^= jitter_state_ << 13;  // xorshift32
    jitter_state_ ^= jitter_state_ >> 17;
    jitter_state_ ^= jitter_state_ << 5;
    const float uniform = static_cast<float>(jitter_state_ >> 8) * 0x1p-24f;  // [0, 1)
    x[i] *= 1.f + (2.f * uniform - 1.f) * jitter_;
  }
}

void Bf16ProductsCpuBackend::matmul_forward(float* out, const float* inp, const float* weight,
                                            const float* bias, int N, int C, int OC) {
  const auto inp_bf16 = rounded_to_bf16(*this, inp, static_cast<int64_t>(N) * C);
  const auto weight_bf16 = rounded_to_bf16(*this, weight, static_cast<int64_t>(OC) * C);
  CpuBackend::matmul_forward(out, inp_bf16->get(), weight_bf16->get(), bias, N, C, OC);
  apply_jitter(out, static_cast<int64_t>(N) * OC);
}

void Bf16ProductsCpuBackend::matmul_backward(float* dinp, float* dweight, float* dbias,
                                             const float* dout, const float* inp,
                                             const float* weight, int N, int C, int OC) {
  const int64_t NC = static_cast<int64_t>(N) * C, OCC = static_cast<int64_t>(OC) * C;
  const auto dout_bf16 = rounded_to_bf16(*this, dout, static_cast<int64_t>(N) * OC);
  const auto inp_bf16 = rounded_to_bf16(*this, inp, NC);
  const auto weight_bf16 = rounded_to_bf16(*this, weight, OCC);
  // The increments in zeroed buffers, so that the jitter touches only what this call adds.
  Scratch dinp_increment(*this, dinp != nullptr ? NC : 0), dweight_increment(*this, OCC);
  CpuBackend::matmul_backward(dinp != nullptr ? dinp_increment.get() : nullptr,
                              dweight_increment.get(), nullptr, dout_bf16->get(), inp_bf16->get(),
                              weight_bf16->get(), N, C, OC);
  if (dinp != nullptr) {
    apply_jitter(dinp_increment.get(), NC);
    for (int64_t i = 0; i < NC; ++i) dinp[i] += dinp_increment.get()[i];
  }
  apply_jitter(dweight_increment.get(), OCC);
  for (int64_t i = 0; i < OCC; ++i) dweight[i] += dweight_increment.get()[i];
  if (dbias == nullptr) return;
  for (int o = 0; o < OC; ++o) {  // from the fp32 dout, as matmul.cu's gemv
    float sum = 0.f;
    for (int n = 0; n < N; ++n) sum += dout[static_cast<int64_t>(n) * OC + o];
    dbias[o] += sum;
  }
}

}  // namespace dgqa::tests
