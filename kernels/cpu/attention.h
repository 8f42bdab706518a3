// Scaled dot-product attention with a per-query-head K/V head map: one code path for
// MHA, GQA, KDGQA and DGQA (they differ only in kv_head).
#pragma once

namespace dgqa::cpu {

// q (B, T, H*d), k and v (B, T, G*d): the outputs of the q/k/v Linear layers, heads side by
// side in the feature dimension. kv_head[h] in [0, G) is the K/V head of query head h.
//   probs[b, h, i, j] = softmax_j(scale * q[b, i, h] . k[b, j, kv_head[h]])   (saved, (B, H, T, T))
//   out[b, i, h*d + e] = sum_j probs[b, h, i, j] * v[b, j, kv_head[h]*d + e]   (out (B, T, H*d))
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const int* kv_head, int B, int T, int H, int G, int d, float scale);

// Accumulates (+=) dq, dk, dv (same layouts as q, k, v) from dout (layout of out).
// scratch holds T*T floats per thread (omp_get_max_threads() of them).
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* probs, const int* kv_head,
                        int B, int T, int H, int G, int d, float scale, float* scratch);

// Floats of scratch attention_backward needs.
long attention_backward_scratch_size(int T);

}  // namespace dgqa::cpu
