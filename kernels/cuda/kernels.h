// The CUDA kernels: the same operations, names and argument orders as the CPU kernels, on
// device pointers, enqueued on the backend's stream (cuda_context.h). The semantics of each
// function, including "backward kernels accumulate (+=) into their outputs", are documented
// once, in kernels/cpu/<family>.h; this file only declares the CUDA twins, and the few extra
// functions of the bf16 mode.
//
// Precision (kernels/backend.h). FP32: every kernel computes in fp32, the matrix products too
// (cublasSgemm, never TF32), close to the CPU backend. BF16 (the default on cuda): the matrix
// products of the linear layers (matmul_forward / matmul_backward, ~97% of ViT-L/16's FLOPs) run
// through cuBLASLt with bf16 operands, fp32 accumulation and fp32 results. Every tensor in memory
// between kernels stays fp32 (the Backend interface is fp32): CudaBackend casts a product's
// activation operands to bf16 into scratch right before it (cast_to_bf16), and reads its weights
// from a bf16 copy of the parameters that the fused AdamW keeps current (bf16_weights.h). The fp32
// parameters remain the master copy; the gradients, the optimizer state and every other kernel
// stay fp32. Attention stays fp32 too: at 197 tokens its two batched products are ~3% of
// ViT-L/16's FLOPs, not worth a second precision in attention.cu.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace dgqa::cuda {

// matmul.cu: fp32 (cuBLAS)
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC);
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC);
// matmul.cu: bf16 operands, fp32 accumulation and results (cuBLASLt). The same products as above
// with inp, weight and dout given as their bf16 casts; the fp32 dout is also given, for dbias
// (summed in fp32). N, C and OC are positive; weight may be null when dinp is.
void matmul_forward_bf16(float* out, const __nv_bfloat16* inp, const __nv_bfloat16* weight,
                         const float* bias, int N, int C, int OC);
void matmul_backward_bf16(float* dinp, float* dweight, float* dbias, const float* dout,
                          const __nv_bfloat16* dout_bf16, const __nv_bfloat16* inp,
                          const __nv_bfloat16* weight, int N, int C, int OC);
// How many bf16 products so far went through cublasGemmEx because cuBLASLt offered no algorithm
// for their shape and alignments (same arithmetic, without the fused bias): tests check that the
// usual shapes never do.
int64_t matmul_bf16_fallbacks();

// bf16_weights.cu: out[i] = x[i] rounded to bf16 (to nearest, ties to even), i < n.
void cast_to_bf16(__nv_bfloat16* out, const float* x, int64_t n);

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
                       const int* kv_head, int B, int T, int H, int G, int d, float scale);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* probs, const int* kv_head,
                        int B, int T, int H, int G, int d, float scale);

// pgqa_noise.cu (the noise is drawn with the same Philox stream as the CPU's: common/philox.h)
void pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H, int G,
                     int T, int d);
void pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise, int B, int T,
                        int H, int G, int d);
void pgqa_noise_backward(float* dx, const float* dy, const float* x, const float* stats,
                         const float* noise, int B, int T, int H, int G, int d);

// cross_entropy.cu (returns the sum of the losses; synchronises to read it)
double softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                     const int* labels, const int* mix_labels,
                                     const float* mix_weights, int N, int K, float smoothing);
void softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* labels,
                                    const int* mix_labels, const float* mix_weights, int N, int K,
                                    float scale, float smoothing);

// patch_embed.cu
void im2col_patches(float* cols, const float* img, int B, int C, int S, int p);

// key_norms.cu
void key_norms(float* norms, const float* k, int B, int T, int G, int d);

// adamw.cu. When params_bf16 is not null, the same kernel also writes each updated parameter
// rounded to bf16 to params_bf16[i] (the BF16 mode's weight mirror: bf16_weights.h).
void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int64_t t,
                  __nv_bfloat16* params_bf16 = nullptr);

// weight_ema.cu
void weight_ema_update(float* ema, const float* params, int64_t n, float weight);

// elementwise.cu
void add_inplace(float* x, const float* y, int64_t n);
void scale_inplace(float* x, float s, int64_t n);
void scale_samples(float* out, const float* in, const float* scales, int B, int64_t n);
double sum_squares(const float* x, int64_t n);  // synchronises to read the result
void tokens_forward(float* x, const float* patches, const float* cls, const float* pos, int B,
                    int N, int D);
void tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx, int B, int N,
                     int D);
void gather_cls_forward(float* out, const float* x, int B, int T, int D);
void gather_cls_backward(float* dx, const float* dout, int B, int T, int D);

}  // namespace dgqa::cuda
