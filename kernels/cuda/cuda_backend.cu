#include "kernels/cuda/cuda_backend.h"

#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/kernels.h"

namespace dgqa {

void* CudaBackend::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  cuda::CudaContext& ctx = cuda::context();
  void* pointer = nullptr;
  DGQA_CUDA_CHECK(cudaMalloc(&pointer, bytes));
  DGQA_CUDA_CHECK(cudaMemsetAsync(pointer, 0, bytes, ctx.stream));
  DGQA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return pointer;
}

void CudaBackend::release(void* pointer) {
  DGQA_CUDA_CHECK(cudaFree(pointer));
}

void CudaBackend::zero(void* pointer, size_t bytes) {
  if (bytes == 0) return;
  DGQA_CUDA_CHECK(cudaMemsetAsync(pointer, 0, bytes, cuda::context().stream));
}

void CudaBackend::copy_to_device(void* device, const void* host, size_t bytes) {
  if (bytes == 0) return;
  cuda::CudaContext& ctx = cuda::context();
  DGQA_CUDA_CHECK(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, ctx.stream));
  DGQA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

void CudaBackend::copy_to_host(void* host, const void* device, size_t bytes) {
  if (bytes == 0) return;
  cuda::CudaContext& ctx = cuda::context();
  DGQA_CUDA_CHECK(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, ctx.stream));
  DGQA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

void CudaBackend::synchronize() {
  DGQA_CUDA_CHECK(cudaStreamSynchronize(cuda::context().stream));
}

void CudaBackend::matmul_forward(float* out, const float* inp, const float* weight,
                                 const float* bias, int N, int C, int OC) {
  cuda::matmul_forward(out, inp, weight, bias, N, C, OC);
}

void CudaBackend::matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                  const float* inp, const float* weight, int N, int C, int OC) {
  cuda::matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

void CudaBackend::layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                    const float* weight, const float* bias, int N, int C,
                                    float eps) {
  cuda::layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
}

void CudaBackend::layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                     const float* inp, const float* weight, const float* mean,
                                     const float* rstd, int N, int C) {
  cuda::layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

void CudaBackend::gelu_forward(float* out, const float* inp, int64_t n) {
  cuda::gelu_forward(out, inp, n);
}

void CudaBackend::gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
  cuda::gelu_backward(dinp, inp, dout, n);
}

void CudaBackend::attention_forward(float* out, float* probs, const float* q, const float* k,
                                    const float* v, const int* kv_head, int B, int P, int H, int G,
                                    int d, float scale) {
  cuda::attention_forward(out, probs, q, k, v, kv_head, B, P, H, G, d, scale);
}

void CudaBackend::attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                     const float* q, const float* k, const float* v,
                                     const float* probs, const int* kv_head, int B, int P, int H,
                                     int G, int d, float scale) {
  cuda::attention_backward(dq, dk, dv, dout, q, k, v, probs, kv_head, B, P, H, G, d, scale);
}

void CudaBackend::pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H,
                                  int G, int P, int d) {
  cuda::pgqa_make_noise(noise, seed, step, layer, H, G, P, d);
}

void CudaBackend::pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise,
                                     int B, int P, int H, int G, int d) {
  cuda::pgqa_noise_forward(y, stats, x, noise, B, P, H, G, d);
}

void CudaBackend::pgqa_noise_backward(float* dx, const float* dy, const float* x,
                                      const float* stats, const float* noise, int B, int P, int H,
                                      int G, int d) {
  cuda::pgqa_noise_backward(dx, dy, x, stats, noise, B, P, H, G, d);
}

double CudaBackend::softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                                  const int* labels, int N, int K) {
  return cuda::softmax_cross_entropy_forward(probs, losses, logits, labels, N, K);
}

void CudaBackend::softmax_cross_entropy_backward(float* dlogits, const float* probs,
                                                 const int* labels, int N, int K, float scale) {
  cuda::softmax_cross_entropy_backward(dlogits, probs, labels, N, K, scale);
}

void CudaBackend::im2col_patches(float* cols, const float* img, int B, int C, int S, int p) {
  cuda::im2col_patches(cols, img, B, C, S, p);
}

void CudaBackend::key_norms(float* norms, const float* k, int B, int P, int G, int d) {
  cuda::key_norms(norms, k, B, P, G, d);
}

void CudaBackend::adamw_update(float* params, const float* grads, float* m, float* v, int64_t n,
                               float lr, float beta1, float beta2, float eps, float weight_decay,
                               int64_t t) {
  cuda::adamw_update(params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
}

void CudaBackend::add_inplace(float* x, const float* y, int64_t n) {
  cuda::add_inplace(x, y, n);
}

void CudaBackend::scale_inplace(float* x, float s, int64_t n) {
  cuda::scale_inplace(x, s, n);
}

double CudaBackend::sum_squares(const float* x, int64_t n) {
  return cuda::sum_squares(x, n);
}

void CudaBackend::tokens_forward(float* x, const float* patches, const float* cls, const float* pos,
                                 int B, int N, int D) {
  cuda::tokens_forward(x, patches, cls, pos, B, N, D);
}

void CudaBackend::tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx, int B,
                                  int N, int D) {
  cuda::tokens_backward(dpatches, dcls, dpos, dx, B, N, D);
}

void CudaBackend::gather_cls_forward(float* out, const float* x, int B, int T, int D) {
  cuda::gather_cls_forward(out, x, B, T, D);
}

void CudaBackend::gather_cls_backward(float* dx, const float* dout, int B, int T, int D) {
  cuda::gather_cls_backward(dx, dout, B, T, D);
}

}  // namespace dgqa
