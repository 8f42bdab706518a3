// PGQA's noise (docs/design.md §3.4) on the attention output of one layer.
#pragma once

#include <cstdint>

namespace dgqa::cpu {

// Draws the standardised noise of one layer: for each K/V group g, R (H/G, T*d) uniform in
// [0, 1) from the Philox stream (seed, step, layer, g), R[i][i] = 0 for i < H/G, then each row
// standardised to mean 0 / unbiased std 1 (a zero std counts as 1).
// noise: (G, H/G, T*d) floats.
void pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H, int G,
                     int T, int d);

// x, y (B, T, H*d) in the layout of attention_forward's out. Query head h = g*(H/G) + i of
// sample b is the row o = x[b, :, h*d : h*d+d] flattened to length L = T*d (index p*d + e):
//   y[b, h] = o - (noise[g, i, :] * std(o) + mean(o))        (unbiased std)
// stats (B, H, 2) receives mean and std of each row for the backward pass. y may equal x.
void pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise, int B, int T,
                        int H, int G, int d);

// Accumulates (+=) dx from dy; x is the forward's input (needed for the std's gradient).
// A row whose std is 0 gets no gradient through its std.
void pgqa_noise_backward(float* dx, const float* dy, const float* x, const float* stats,
                         const float* noise, int B, int T, int H, int G, int d);

}  // namespace dgqa::cpu
