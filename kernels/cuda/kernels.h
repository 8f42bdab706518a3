// The CUDA kernels: the same operations, names and argument orders as the CPU kernels, on
// device pointers, enqueued on the backend's stream (cuda_context.h). The semantics of each
// function, including "backward kernels accumulate (+=) into their outputs", are documented
// once, in kernels/cpu/<family>.h; this file only declares the CUDA twins. This first CUDA
// backend computes in fp32 (bf16 mixed precision comes later).
#pragma once

#include <cstdint>

namespace dgqa::cuda {

// matmul.cu (cuBLAS)
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC);
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC);

// layernorm.cu
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C);

// gelu.cu
void gelu_forward(float* out, const float* inp, int64_t n);
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n);

// attention.cu (kv_head is a device array of H ints)
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const int* kv_head, int B, int P, int H, int G, int d, float scale);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* probs, const int* kv_head,
                        int B, int P, int H, int G, int d, float scale);

// pgqa_noise.cu (the noise is drawn with the same Philox stream as the CPU's: kernels/philox.h)
void pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H, int G,
                     int P, int d);
void pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise, int B, int P,
                        int H, int G, int d);
void pgqa_noise_backward(float* dx, const float* dy, const float* x, const float* stats,
                         const float* noise, int B, int P, int H, int G, int d);

// cross_entropy.cu (returns the sum of the losses; synchronises to read it)
double softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                     const int* labels, int N, int K);
void softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* labels, int N,
                                    int K, float scale);

// patch_embed.cu
void im2col_patches(float* cols, const float* img, int B, int C, int S, int p);

// key_norms.cu
void key_norms(float* norms, const float* k, int B, int P, int G, int d);

// adamw.cu
void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int64_t t);

// elementwise.cu
void add_inplace(float* x, const float* y, int64_t n);
void scale_inplace(float* x, float s, int64_t n);
double sum_squares(const float* x, int64_t n);  // synchronises to read the result
void tokens_forward(float* x, const float* patches, const float* cls, const float* pos, int B,
                    int N, int D);
void tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx, int B, int N,
                     int D);
void gather_cls_forward(float* out, const float* x, int B, int T, int D);
void gather_cls_backward(float* dx, const float* dout, int B, int T, int D);

}  // namespace dgqa::cuda
