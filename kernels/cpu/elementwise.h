// Small element-wise and layout operations of the ViT.
#pragma once

#include <cstdint>

namespace dgqa::cpu {

// x[i] += y[i]
void add_inplace(float* x, const float* y, int64_t n);

// x[i] *= s
void scale_inplace(float* x, float s, int64_t n);

// out[b, i] = in[b, i] * scales[b] for B samples of n elements each; out may be in. Drop path
// (docs/design.md §3.6) scales a branch's output per sample, and its gradient the same way.
void scale_samples(float* out, const float* in, const float* scales, int B, int64_t n);

// sum_i x[i]^2, accumulated in double.
double sum_squares(const float* x, int64_t n);

// Token sequence: x[b, 0] = cls + pos[0]; x[b, 1 + i] = patches[b, i] + pos[1 + i].
// patches (B, N, D), cls (D), pos (N + 1, D), x (B, N + 1, D).
void tokens_forward(float* x, const float* patches, const float* cls, const float* pos, int B,
                    int N, int D);

// Accumulates (+=): dpatches[b, i] += dx[b, 1 + i]; dcls += sum_b dx[b, 0]; dpos += sum_b dx[b].
void tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx, int B, int N,
                     int D);

// out[b] = x[b, 0] for x (B, T, D), out (B, D); backward: dx[b, 0] += dout[b].
void gather_cls_forward(float* out, const float* x, int B, int T, int D);
void gather_cls_backward(float* dx, const float* dout, int B, int T, int D);

}  // namespace dgqa::cpu
