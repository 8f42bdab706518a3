#include "kernels/profiling_backend.h"

#include <string>

namespace dgqa {

namespace {

std::string shape(const char* kernel, int N, int C, int OC) {
  return std::string(kernel) + " " + std::to_string(N) + "x" + std::to_string(C) + "x" +
         std::to_string(OC);
}

}  // namespace

void ProfilingBackend::zero(void* pointer, size_t bytes) {
  timed("zero", [&] { return inner_->zero(pointer, bytes); });
}

void ProfilingBackend::copy_to_device(void* device, const void* host, size_t bytes) {
  timed("copy_to_device", [&] { return inner_->copy_to_device(device, host, bytes); });
}

void ProfilingBackend::copy_to_host(void* host, const void* device, size_t bytes) {
  timed("copy_to_host", [&] { return inner_->copy_to_host(host, device, bytes); });
}

void ProfilingBackend::matmul_forward(float* out, const float* inp, const float* weight,
                                      const float* bias, int N, int C, int OC) {
  timed(shape("matmul_forward", N, C, OC),
        [&] { return inner_->matmul_forward(out, inp, weight, bias, N, C, OC); });
}

void ProfilingBackend::matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                       const float* inp, const float* weight, int N, int C,
                                       int OC) {
  timed(shape("matmul_backward", N, C, OC),
        [&] { return inner_->matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC); });
}

void ProfilingBackend::layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                         const float* weight, const float* bias, int N, int C,
                                         float eps) {
  timed("layernorm_forward",
        [&] { return inner_->layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps); });
}

void ProfilingBackend::layernorm_backward(float* dinp, float* dweight, float* dbias,
                                          const float* dout, const float* inp, const float* weight,
                                          const float* mean, const float* rstd, int N, int C) {
  timed("layernorm_backward", [&] {
    return inner_->layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
  });
}

void ProfilingBackend::gelu_forward(float* out, const float* inp, int64_t n) {
  timed("gelu_forward", [&] { return inner_->gelu_forward(out, inp, n); });
}

void ProfilingBackend::gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
  timed("gelu_backward", [&] { return inner_->gelu_backward(dinp, inp, dout, n); });
}

void ProfilingBackend::attention_forward(float* out, float* probs, const float* q, const float* k,
                                         const float* v, const int* kv_head, int B, int T, int H,
                                         int G, int d, float scale) {
  timed("attention_forward", [&] {
    return inner_->attention_forward(out, probs, q, k, v, kv_head, B, T, H, G, d, scale);
  });
}

void ProfilingBackend::attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                          const float* q, const float* k, const float* v,
                                          const float* probs, const int* kv_head, int B, int T,
                                          int H, int G, int d, float scale) {
  timed("attention_backward", [&] {
    return inner_->attention_backward(dq, dk, dv, dout, q, k, v, probs, kv_head, B, T, H, G, d,
                                      scale);
  });
}

void ProfilingBackend::pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer,
                                       int H, int G, int T, int d) {
  timed("pgqa_make_noise",
        [&] { return inner_->pgqa_make_noise(noise, seed, step, layer, H, G, T, d); });
}

void ProfilingBackend::pgqa_noise_forward(float* y, float* stats, const float* x,
                                          const float* noise, int B, int T, int H, int G, int d) {
  timed("pgqa_noise_forward",
        [&] { return inner_->pgqa_noise_forward(y, stats, x, noise, B, T, H, G, d); });
}

void ProfilingBackend::pgqa_noise_backward(float* dx, const float* dy, const float* x,
                                           const float* stats, const float* noise, int B, int T,
                                           int H, int G, int d) {
  timed("pgqa_noise_backward",
        [&] { return inner_->pgqa_noise_backward(dx, dy, x, stats, noise, B, T, H, G, d); });
}

double ProfilingBackend::softmax_cross_entropy_forward(float* probs, float* losses,
                                                       const float* logits, const int* labels,
                                                       const int* mix_labels,
                                                       const float* mix_weights, int N, int K,
                                                       float smoothing) {
  return timed("softmax_cross_entropy_forward", [&] {
    return inner_->softmax_cross_entropy_forward(probs, losses, logits, labels, mix_labels,
                                                 mix_weights, N, K, smoothing);
  });
}

void ProfilingBackend::softmax_cross_entropy_backward(float* dlogits, const float* probs,
                                                      const int* labels, const int* mix_labels,
                                                      const float* mix_weights, int N, int K,
                                                      float scale, float smoothing) {
  timed("softmax_cross_entropy_backward", [&] {
    return inner_->softmax_cross_entropy_backward(dlogits, probs, labels, mix_labels, mix_weights,
                                                  N, K, scale, smoothing);
  });
}

void ProfilingBackend::im2col_patches(float* cols, const float* img, int B, int C, int S, int p) {
  timed("im2col_patches", [&] { return inner_->im2col_patches(cols, img, B, C, S, p); });
}

void ProfilingBackend::key_norms(float* norms, const float* k, int B, int T, int G, int d) {
  timed("key_norms", [&] { return inner_->key_norms(norms, k, B, T, G, d); });
}

void ProfilingBackend::adamw_update(float* params, const float* grads, float* m, float* v,
                                    int64_t n, float lr, float beta1, float beta2, float eps,
                                    float weight_decay, int64_t t) {
  timed("adamw_update", [&] {
    return inner_->adamw_update(params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
  });
}

void ProfilingBackend::weight_ema_update(float* ema, const float* params, int64_t n, float weight) {
  timed("weight_ema_update", [&] { return inner_->weight_ema_update(ema, params, n, weight); });
}

void ProfilingBackend::add_inplace(float* x, const float* y, int64_t n) {
  timed("add_inplace", [&] { return inner_->add_inplace(x, y, n); });
}

void ProfilingBackend::scale_inplace(float* x, float s, int64_t n) {
  timed("scale_inplace", [&] { return inner_->scale_inplace(x, s, n); });
}

void ProfilingBackend::scale_samples(float* out, const float* in, const float* scales, int B,
                                     int64_t n) {
  timed("scale_samples", [&] { return inner_->scale_samples(out, in, scales, B, n); });
}

double ProfilingBackend::sum_squares(const float* x, int64_t n) {
  return timed("sum_squares", [&] { return inner_->sum_squares(x, n); });
}

void ProfilingBackend::tokens_forward(float* x, const float* patches, const float* cls,
                                      const float* pos, int B, int N, int D) {
  timed("tokens_forward", [&] { return inner_->tokens_forward(x, patches, cls, pos, B, N, D); });
}

void ProfilingBackend::tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx,
                                       int B, int N, int D) {
  timed("tokens_backward",
        [&] { return inner_->tokens_backward(dpatches, dcls, dpos, dx, B, N, D); });
}

void ProfilingBackend::gather_cls_forward(float* out, const float* x, int B, int T, int D) {
  timed("gather_cls_forward", [&] { return inner_->gather_cls_forward(out, x, B, T, D); });
}

void ProfilingBackend::gather_cls_backward(float* dx, const float* dout, int B, int T, int D) {
  timed("gather_cls_backward", [&] { return inner_->gather_cls_backward(dx, dout, B, T, D); });
}

}  // namespace dgqa
