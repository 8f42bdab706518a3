#include "kernels/cuda/cuda_backend.h"

#include "kernels/cuda/bf16_weights.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/kernels.h"

namespace dgqa {

CudaBackend::CudaBackend(Precision precision) : precision_(precision) {
  if (precision_ == Precision::kBF16) bf16_ = std::make_unique<cuda::Bf16State>();
}

// Frees the bf16 copy and buffers (after the stream drains: bf16_weights.cu).
CudaBackend::~CudaBackend() = default;

void CudaBackend::set_parameters(const float* params, int64_t count) {
  if (bf16_ != nullptr) bf16_->weights.set_parameters(params, count);
}

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
  if (bf16_ != nullptr) bf16_->weights.released(pointer);
  // cudaFree need not wait for kernels still queued on the stream that read or write the memory.
  DGQA_CUDA_CHECK(cudaStreamSynchronize(cuda::context().stream));
  DGQA_CUDA_CHECK(cudaFree(pointer));
}

// The writes below into the parameters (a restore, an import, a test) make their bf16 copy stale:
// bf16_weights.h.
void CudaBackend::note_external_write(const void* pointer, size_t bytes) {
  if (bf16_ != nullptr) bf16_->weights.note_write(pointer, bytes);
}

void CudaBackend::zero(void* pointer, size_t bytes) {
  if (bytes == 0) return;
  if (bf16_ != nullptr) bf16_->weights.note_write(pointer, bytes);
  DGQA_CUDA_CHECK(cudaMemsetAsync(pointer, 0, bytes, cuda::context().stream));
}

void CudaBackend::copy_to_device(void* device, const void* host, size_t bytes) {
  if (bytes == 0) return;
  if (bf16_ != nullptr) bf16_->weights.note_write(device, bytes);
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

// BF16: the activations (and dout) are cast to bf16 into the backend's scratch right before the
// product; the weight comes from the bf16 copy of the parameters. A degenerate product (a zero
// dimension) takes the fp32 path, which handles every case and has nothing to round.
//
// The gradients stay fp32 (the products write fp32 and accumulate in fp32): they are summed over
// the ranks and feed the fp32 AdamW, where bf16's 8 significant bits would lose the small
// contributions and updates that fp32 keeps (an addend below 2^-9 of the running sum vanishes).
void CudaBackend::matmul_forward(float* out, const float* inp, const float* weight,
                                 const float* bias, int N, int C, int OC) {
  if (bf16_ == nullptr || N == 0 || C == 0 || OC == 0) {
    cuda::matmul_forward(out, inp, weight, bias, N, C, OC);
    return;
  }
  const __nv_bfloat16* weight_bf16 = bf16_->weights.weight(weight, static_cast<int64_t>(OC) * C);
  __nv_bfloat16* inp_bf16 = bf16_->inp.get(static_cast<int64_t>(N) * C);
  cuda::cast_to_bf16(inp_bf16, inp, static_cast<int64_t>(N) * C);
  cuda::matmul_forward_bf16(out, inp_bf16, weight_bf16, bias, N, C, OC);
}

void CudaBackend::matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                  const float* inp, const float* weight, int N, int C, int OC) {
  if (bf16_ == nullptr || N == 0 || C == 0 || OC == 0) {
    cuda::matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    return;
  }
  const __nv_bfloat16* weight_bf16 =
      dinp != nullptr ? bf16_->weights.weight(weight, static_cast<int64_t>(OC) * C) : nullptr;
  __nv_bfloat16* inp_bf16 = bf16_->inp.get(static_cast<int64_t>(N) * C);
  cuda::cast_to_bf16(inp_bf16, inp, static_cast<int64_t>(N) * C);
  __nv_bfloat16* dout_bf16 = bf16_->dout.get(static_cast<int64_t>(N) * OC);
  cuda::cast_to_bf16(dout_bf16, dout, static_cast<int64_t>(N) * OC);
  cuda::matmul_backward_bf16(dinp, dweight, dbias, dout, dout_bf16, inp_bf16, weight_bf16, N, C,
                             OC);
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
                                    const float* v, const int* kv_head, int B, int T, int H, int G,
                                    int d, float scale) {
  cuda::attention_forward(out, probs, q, k, v, kv_head, B, T, H, G, d, scale);
}

void CudaBackend::attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                     const float* q, const float* k, const float* v,
                                     const float* probs, const int* kv_head, int B, int T, int H,
                                     int G, int d, float scale) {
  cuda::attention_backward(dq, dk, dv, dout, q, k, v, probs, kv_head, B, T, H, G, d, scale);
}

void CudaBackend::pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H,
                                  int G, int T, int d) {
  cuda::pgqa_make_noise(noise, seed, step, layer, H, G, T, d);
}

void CudaBackend::pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise,
                                     int B, int T, int H, int G, int d) {
  cuda::pgqa_noise_forward(y, stats, x, noise, B, T, H, G, d);
}

void CudaBackend::pgqa_noise_backward(float* dx, const float* dy, const float* x,
                                      const float* stats, const float* noise, int B, int T, int H,
                                      int G, int d) {
  cuda::pgqa_noise_backward(dx, dy, x, stats, noise, B, T, H, G, d);
}

double CudaBackend::softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                                  const int* labels, const int* mix_labels,
                                                  const float* mix_weights, int N, int K,
                                                  float smoothing) {
  return cuda::softmax_cross_entropy_forward(probs, losses, logits, labels, mix_labels, mix_weights,
                                             N, K, smoothing);
}

void CudaBackend::softmax_cross_entropy_backward(float* dlogits, const float* probs,
                                                 const int* labels, const int* mix_labels,
                                                 const float* mix_weights, int N, int K,
                                                 float scale, float smoothing) {
  cuda::softmax_cross_entropy_backward(dlogits, probs, labels, mix_labels, mix_weights, N, K, scale,
                                       smoothing);
}

void CudaBackend::im2col_patches(float* cols, const float* img, int B, int C, int S, int p) {
  cuda::im2col_patches(cols, img, B, C, S, p);
}

void CudaBackend::key_norms(float* norms, const float* k, int B, int T, int G, int d) {
  cuda::key_norms(norms, k, B, T, G, d);
}

// BF16: fused with the refresh of the parameters' bf16 copy when that copy is current
// (bf16_weights.h). m and v are never parameters, but a write there is noted like any other.
void CudaBackend::adamw_update(float* params, const float* grads, float* m, float* v, int64_t n,
                               float lr, float beta1, float beta2, float eps, float weight_decay,
                               int64_t t) {
  __nv_bfloat16* params_bf16 = nullptr;
  if (bf16_ != nullptr) {
    bf16_->weights.note_write(m, sizeof(float) * n);
    bf16_->weights.note_write(v, sizeof(float) * n);
    params_bf16 = bf16_->weights.adamw_target(params, n);
  }
  cuda::adamw_update(params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, t, params_bf16);
}

void CudaBackend::weight_ema_update(float* ema, const float* params, int64_t n, float weight) {
  if (bf16_ != nullptr) bf16_->weights.note_write(ema, sizeof(float) * n);
  cuda::weight_ema_update(ema, params, n, weight);
}

void CudaBackend::add_inplace(float* x, const float* y, int64_t n) {
  if (bf16_ != nullptr) bf16_->weights.note_write(x, sizeof(float) * n);
  cuda::add_inplace(x, y, n);
}

void CudaBackend::scale_inplace(float* x, float s, int64_t n) {
  if (bf16_ != nullptr) bf16_->weights.note_write(x, sizeof(float) * n);
  cuda::scale_inplace(x, s, n);
}

void CudaBackend::scale_samples(float* out, const float* in, const float* scales, int B,
                                int64_t n) {
  if (bf16_ != nullptr) bf16_->weights.note_write(out, sizeof(float) * B * n);
  cuda::scale_samples(out, in, scales, B, n);
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
