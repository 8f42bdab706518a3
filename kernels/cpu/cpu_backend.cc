#include "kernels/cpu/cpu_backend.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/key_norms.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/patch_embed.h"
#include "kernels/cpu/pgqa_noise.h"
#include "kernels/cpu/weight_ema.h"

namespace dgqa {

namespace {
constexpr size_t kAlignment = 64;  // a cache line, and the widest SIMD load
}  // namespace

CpuBackend::~CpuBackend() {
  release(attention_scratch_);
}

void* CpuBackend::allocate(size_t bytes) {
  // aligned_alloc wants a size that is a multiple of the alignment (and not 0).
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* pointer = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (pointer == nullptr) throw std::bad_alloc();
  std::memset(pointer, 0, rounded);
  return pointer;
}

void CpuBackend::release(void* pointer) {
  std::free(pointer);
}

void CpuBackend::zero(void* pointer, size_t bytes) {
  // Large buffers (the gradients) are cleared by every thread, each its share: one core
  // alone cannot use all of the memory bandwidth.
  constexpr size_t kParallelFrom = size_t{1} << 22;
  char* bytes_start = static_cast<char*>(pointer);
#pragma omp parallel if (bytes >= kParallelFrom)
  {
    const size_t parts = omp_get_num_threads(), part = omp_get_thread_num();
    const size_t first = bytes * part / parts, last = bytes * (part + 1) / parts;
    std::memset(bytes_start + first, 0, last - first);
  }
}

void CpuBackend::copy_to_device(void* device, const void* host, size_t bytes) {
  std::memcpy(device, host, bytes);
}

void CpuBackend::copy_to_host(void* host, const void* device, size_t bytes) {
  std::memcpy(host, device, bytes);
}

void CpuBackend::matmul_forward(float* out, const float* inp, const float* weight,
                                const float* bias, int N, int C, int OC) {
  cpu::matmul_forward(out, inp, weight, bias, N, C, OC);
}

void CpuBackend::matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int N, int C, int OC) {
  cpu::matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

void CpuBackend::layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                   const float* weight, const float* bias, int N, int C,
                                   float eps) {
  cpu::layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
}

void CpuBackend::layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                    const float* inp, const float* weight, const float* mean,
                                    const float* rstd, int N, int C) {
  cpu::layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

void CpuBackend::gelu_forward(float* out, const float* inp, int64_t n) {
  cpu::gelu_forward(out, inp, n);
}

void CpuBackend::gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
  cpu::gelu_backward(dinp, inp, dout, n);
}

void CpuBackend::attention_forward(float* out, float* probs, const float* q, const float* k,
                                   const float* v, const int* kv_head, int B, int T, int H, int G,
                                   int d, float scale) {
  cpu::attention_forward(out, probs, q, k, v, kv_head, B, T, H, G, d, scale);
}

void CpuBackend::attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                    const float* q, const float* k, const float* v,
                                    const float* probs, const int* kv_head, int B, int T, int H,
                                    int G, int d, float scale) {
  const long needed = cpu::attention_backward_scratch_size(T);
  if (needed > attention_scratch_floats_) {
    float* bigger = static_cast<float*>(allocate(sizeof(float) * needed));
    release(attention_scratch_);
    attention_scratch_ = bigger;
    attention_scratch_floats_ = needed;
  }
  cpu::attention_backward(dq, dk, dv, dout, q, k, v, probs, kv_head, B, T, H, G, d, scale,
                          attention_scratch_);
}

void CpuBackend::pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H,
                                 int G, int T, int d) {
  cpu::pgqa_make_noise(noise, seed, step, layer, H, G, T, d);
}

void CpuBackend::pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise,
                                    int B, int T, int H, int G, int d) {
  cpu::pgqa_noise_forward(y, stats, x, noise, B, T, H, G, d);
}

void CpuBackend::pgqa_noise_backward(float* dx, const float* dy, const float* x, const float* stats,
                                     const float* noise, int B, int T, int H, int G, int d) {
  cpu::pgqa_noise_backward(dx, dy, x, stats, noise, B, T, H, G, d);
}

double CpuBackend::softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                                 const int* labels, const int* mix_labels,
                                                 const float* mix_weights, int N, int K,
                                                 float smoothing) {
  return cpu::softmax_cross_entropy_forward(probs, losses, logits, labels, mix_labels, mix_weights,
                                            N, K, smoothing);
}

void CpuBackend::softmax_cross_entropy_backward(float* dlogits, const float* probs,
                                                const int* labels, const int* mix_labels,
                                                const float* mix_weights, int N, int K, float scale,
                                                float smoothing) {
  cpu::softmax_cross_entropy_backward(dlogits, probs, labels, mix_labels, mix_weights, N, K, scale,
                                      smoothing);
}

void CpuBackend::im2col_patches(float* cols, const float* img, int B, int C, int S, int p) {
  cpu::im2col_patches(cols, img, B, C, S, p);
}

void CpuBackend::key_norms(float* norms, const float* k, int B, int T, int G, int d) {
  cpu::key_norms(norms, k, B, T, G, d);
}

void CpuBackend::adamw_update(float* params, const float* grads, float* m, float* v, int64_t n,
                              float lr, float beta1, float beta2, float eps, float weight_decay,
                              int64_t t) {
  cpu::adamw_update(params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
}

void CpuBackend::weight_ema_update(float* ema, const float* params, int64_t n, float weight) {
  cpu::weight_ema_update(ema, params, n, weight);
}

void CpuBackend::add_inplace(float* x, const float* y, int64_t n) {
  cpu::add_inplace(x, y, n);
}

void CpuBackend::scale_inplace(float* x, float s, int64_t n) {
  cpu::scale_inplace(x, s, n);
}

void CpuBackend::scale_samples(float* out, const float* in, const float* scales, int B, int64_t n) {
  cpu::scale_samples(out, in, scales, B, n);
}

double CpuBackend::sum_squares(const float* x, int64_t n) {
  return cpu::sum_squares(x, n);
}

void CpuBackend::tokens_forward(float* x, const float* patches, const float* cls, const float* pos,
                                int B, int N, int D) {
  cpu::tokens_forward(x, patches, cls, pos, B, N, D);
}

void CpuBackend::tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx, int B,
                                 int N, int D) {
  cpu::tokens_backward(dpatches, dcls, dpos, dx, B, N, D);
}

void CpuBackend::gather_cls_forward(float* out, const float* x, int B, int T, int D) {
  cpu::gather_cls_forward(out, x, B, T, D);
}

void CpuBackend::gather_cls_backward(float* dx, const float* dout, int B, int T, int D) {
  cpu::gather_cls_backward(dx, dout, B, T, D);
}

}  // namespace dgqa
