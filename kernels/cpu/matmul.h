// Linear layers on the CPU through OpenBLAS (cblas_sgemm). Row-major throughout.
#pragma once

namespace dgqa::cpu {

// out[n, o] = sum_c inp[n, c] * weight[o, c] + bias[o]
// inp (N, C), weight (OC, C) as a torch Linear, bias (OC) or null, out (N, OC).
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC);

// Accumulates (+=) the gradients of matmul_forward:
//   dinp[n, c] += sum_o dout[n, o] * weight[o, c]     (skipped when dinp is null)
//   dweight[o, c] += sum_n dout[n, o] * inp[n, c]
//   dbias[o] += sum_n dout[n, o]                      (skipped when dbias is null)
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC);

}  // namespace dgqa::cpu
