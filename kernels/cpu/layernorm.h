// LayerNorm over the last dimension (biased variance, as torch.nn.LayerNorm).
#pragma once

namespace dgqa::cpu {

// out[n, :] = (inp[n, :] - mean[n]) * rstd[n] * weight + bias, rstd = 1 / sqrt(var + eps).
// inp, out (N, C); weight, bias (C); mean, rstd (N) are saved for the backward pass.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps);

// Accumulates (+=) dinp, dweight, dbias from dout and the saved mean/rstd.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C);

}  // namespace dgqa::cpu
