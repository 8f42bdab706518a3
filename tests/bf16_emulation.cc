#include "tests/bf16_emulation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "kernels/cuda/bf16.h"
#include "model/reducer.h"
#include "tests/test_util.h"

namespace dgqa::testing {

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
std::unique_ptr<Scratch> RoundedToBf16(Backend& backend, const float* x, int64_t n) {
  auto rounded = std::make_unique<Scratch>(backend, n);
  for (int64_t i = 0; i < n; ++i) rounded->get()[i] = round_to_bf16(x[i]);
  return rounded;
}

}  // namespace

void Bf16ProductsCpuBackend::Jitter(float* x, int64_t n) {
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
  const auto inp_bf16 = RoundedToBf16(*this, inp, static_cast<int64_t>(N) * C);
  const auto weight_bf16 = RoundedToBf16(*this, weight, static_cast<int64_t>(OC) * C);
  CpuBackend::matmul_forward(out, inp_bf16->get(), weight_bf16->get(), bias, N, C, OC);
  Jitter(out, static_cast<int64_t>(N) * OC);
}

void Bf16ProductsCpuBackend::matmul_backward(float* dinp, float* dweight, float* dbias,
                                             const float* dout, const float* inp,
                                             const float* weight, int N, int C, int OC) {
  const int64_t NC = static_cast<int64_t>(N) * C, OCC = static_cast<int64_t>(OC) * C;
  const auto dout_bf16 = RoundedToBf16(*this, dout, static_cast<int64_t>(N) * OC);
  const auto inp_bf16 = RoundedToBf16(*this, inp, NC);
  const auto weight_bf16 = RoundedToBf16(*this, weight, OCC);
  // The increments in zeroed buffers, so that the jitter touches only what this call adds.
  Scratch dinp_increment(*this, dinp != nullptr ? NC : 0), dweight_increment(*this, OCC);
  CpuBackend::matmul_backward(dinp != nullptr ? dinp_increment.get() : nullptr,
                              dweight_increment.get(), nullptr, dout_bf16->get(), inp_bf16->get(),
                              weight_bf16->get(), N, C, OC);
  if (dinp != nullptr) {
    Jitter(dinp_increment.get(), NC);
    for (int64_t i = 0; i < NC; ++i) dinp[i] += dinp_increment.get()[i];
  }
  Jitter(dweight_increment.get(), OCC);
  for (int64_t i = 0; i < OCC; ++i) dweight[i] += dweight_increment.get()[i];
  if (dbias == nullptr) return;
  for (int o = 0; o < OC; ++o) {  // from the fp32 dout, as matmul.cu's gemv
    float sum = 0.f;
    for (int n = 0; n < N; ++n) sum += dout[static_cast<int64_t>(n) * OC + o];
    dbias[o] += sum;
  }
}

ModelConfig Bf16TestModel(AttentionScheme scheme) {
  ModelConfig c;
  c.image_size = 32;
  c.patch_size = 8;
  c.in_channels = 3;
  c.num_classes = 10;
  c.embed_dim = 64;
  c.depth = 2;
  c.num_heads = 4;
  c.num_kv_heads = scheme == AttentionScheme::kMHA ? 4 : 2;
  c.attention = scheme;
  c.dgqa_window = 1;
  c.init_std = 0.1f;
  return c;
}

ModelRun RunBf16TestModel(Backend& backend, AttentionScheme scheme) {
  const ModelConfig config = Bf16TestModel(scheme);
  const int B = 4;
  VisionTransformer model(config, backend, B, 3);
  const std::vector<float> images = RandomVector(
      static_cast<size_t>(B) * config.in_channels * config.image_size * config.image_size, 5);
  const std::vector<int32_t> labels = {1, 7, 3, 9};
  LocalReducer reducer;
  model.zero_grads();
  ModelRun run;
  run.initial_params = model.params_to_host();
  run.loss = model.forward(images.data(), labels.data(), B, ForwardContext{true, 0}, reducer);
  run.logits = model.logits_to_host();
  for (const GroupAllocator& allocator : model.allocators()) {
    run.allocations.push_back(allocator.active_allocation());
  }
  model.backward(1.f / B);
  run.grads.resize(model.layout().total_size());
  backend.copy_to_host(run.grads.data(), model.grads(), run.grads.size() * sizeof(float));
  return run;
}

namespace {

// Keeps the largest error / tolerance seen and where it was.
class WorstRatio {
 public:
  void Add(double error, double tolerance, const std::string& where) {
    double ratio = error / tolerance;
    if (std::isnan(ratio)) ratio = std::numeric_limits<double>::infinity();
    if (ratio > use_.worst || use_.where.empty()) use_ = {ratio, where};
  }
  ToleranceUse result() const { return use_; }

 private:
  ToleranceUse use_;
};

}  // namespace

ToleranceUse CompareRuns(const ModelRun& actual, const ModelRun& expected,
                         const RunTolerance& tolerance, const ParamLayout& layout) {
  WorstRatio worst;
  if (actual.initial_params != expected.initial_params) {
    worst.Add(std::numeric_limits<double>::infinity(), 1.0, "the initial parameters differ");
    return worst.result();
  }
  if (actual.allocations != expected.allocations) {
    worst.Add(std::numeric_limits<double>::infinity(), 1.0, "the allocations differ");
    return worst.result();
  }
  worst.Add(std::fabs(actual.loss - expected.loss), tolerance.loss_rel * std::fabs(expected.loss),
            "loss");

  double largest_logit = 0;
  for (const float x : expected.logits)
    largest_logit = std::max<double>(largest_logit, std::fabs(x));
  if (actual.logits.size() != expected.logits.size()) {
    worst.Add(std::numeric_limits<double>::infinity(), 1.0, "the logits' sizes differ");
    return worst.result();
  }
  for (size_t i = 0; i < expected.logits.size(); ++i) {
    worst.Add(std::fabs(static_cast<double>(actual.logits[i]) - expected.logits[i]),
              tolerance.logit_rel * largest_logit + tolerance.logit_abs,
              "logit " + std::to_string(i));
  }

  if (actual.grads.size() != expected.grads.size()) {
    worst.Add(std::numeric_limits<double>::infinity(), 1.0, "the gradients' sizes differ");
    return worst.result();
  }
  for (const TensorSlot& slot : layout.tensors()) {
    double largest = 0, norm2 = 0, error2 = 0;
    for (int64_t i = 0; i < slot.size; ++i) {
      const double reference = expected.grads[slot.offset + i];
      const double error = actual.grads[slot.offset + i] - reference;
      largest = std::max(largest, std::fabs(reference));
      norm2 += reference * reference;
      error2 += error * error;
    }
    worst.Add(std::sqrt(error2),
              tolerance.grad_norm_rel * std::sqrt(norm2) +
                  tolerance.grad_norm_abs * std::sqrt(static_cast<double>(slot.size)),
              slot.name + ": the L2 norm of the error");
    for (int64_t i = 0; i < slot.size; ++i) {
      worst.Add(std::fabs(static_cast<double>(actual.grads[slot.offset + i]) -
                          expected.grads[slot.offset + i]),
                tolerance.grad_elem_rel * largest + tolerance.grad_elem_abs,
                slot.name + "[" + std::to_string(i) + "]");
    }
  }
  return worst.result();
}

}  // namespace dgqa::testing
