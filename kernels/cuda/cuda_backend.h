// The CUDA backend: device memory and the kernels of kernels/cuda (cuBLAS, cuBLASLt + CUDA
// kernels), all on the one stream of the CUDA context (kernels/cuda/cuda_context.h). Kernels only
// enqueue work; copies to and from the host and synchronize() wait for it. In BF16 mode the
// matrix products take bf16 operands (kernels/cuda/kernels.h); the backend then owns the bf16 copy
// of the parameters and the cast buffers (kernels/cuda/bf16_weights.h).
#pragma once

#include <memory>
#include <string>

#include "kernels/backend.h"

namespace dgqa {

namespace cuda {
struct Bf16State;
}  // namespace cuda

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(Precision precision = Precision::kFP32);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  bool host_memory() const override { return false; }
  Precision precision() const override { return precision_; }
  // BF16: registers the parameters whose bf16 copy the products read (FP32: nothing to do).
  void set_parameters(const float* params, int64_t count) override;
  void note_external_write(const void* pointer, size_t bytes) override;

  // Zeroed device memory (nullptr for 0 bytes).
  void* allocate(size_t bytes) override;
  void release(void* pointer) override;
  void zero(void* pointer, size_t bytes) override;
  // Both copies are complete when they return.
  void copy_to_device(void* device, const void* host, size_t bytes) override;
  void copy_to_host(void* host, const void* device, size_t bytes) override;
  void synchronize() override;

  void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                      int C, int OC) override;
  void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, int N, int C, int OC) override;
  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                         const float* weight, const float* bias, int N, int C, float eps) override;
  void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const float* weight, const float* mean,
                          const float* rstd, int N, int C) override;
  void gelu_forward(float* out, const float* inp, int64_t n) override;
  void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) override;
  void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                         const int* kv_head, int B, int T, int H, int G, int d,
                         float scale) override;
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                          const float* k, const float* v, const float* probs, const int* kv_head,
                          int B, int T, int H, int G, int d, float scale) override;
  void pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H, int G,
                       int T, int d) override;
  void pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise, int B, int T,
                          int H, int G, int d) override;
  void pgqa_noise_backward(float* dx, const float* dy, const float* x, const float* stats,
                           const float* noise, int B, int T, int H, int G, int d) override;
  double softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                       const int* labels, const int* mix_labels,
                                       const float* mix_weights, int N, int K,
                                       float smoothing) override;
  void softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* labels,
                                      const int* mix_labels, const float* mix_weights, int N, int K,
                                      float scale, float smoothing) override;
  void im2col_patches(float* cols, const float* img, int B, int C, int S, int p) override;
  void key_norms(float* norms, const float* k, int B, int T, int G, int d) override;
  void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, int64_t t) override;
  void weight_ema_update(float* ema, const float* params, int64_t n, float weight) override;
  void add_inplace(float* x, const float* y, int64_t n) override;
  void scale_inplace(float* x, float s, int64_t n) override;
  void scale_samples(float* out, const float* in, const float* scales, int B, int64_t n) override;
  double sum_squares(const float* x, int64_t n) override;
  void tokens_forward(float* x, const float* patches, const float* cls, const float* pos, int B,
                      int N, int D) override;
  void tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx, int B, int N,
                       int D) override;
  void gather_cls_forward(float* out, const float* x, int B, int T, int D) override;
  void gather_cls_backward(float* dx, const float* dout, int B, int T, int D) override;

 private:
  const Precision precision_;
  std::unique_ptr<cuda::Bf16State> bf16_;  // BF16 mode only
};

}  // namespace dgqa
