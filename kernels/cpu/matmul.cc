#include "kernels/cpu/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <cstdint>

namespace dgqa::cpu {

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC) {
  // With a bias, every row of out starts as the bias and the product is added to it (beta = 1).
  float beta = 0.f;
  if (bias != nullptr) {
#pragma omp parallel for
    for (int n = 0; n < N; ++n) {
      float* out_row = out + static_cast<int64_t>(n) * OC;
      for (int o = 0; o < OC; ++o) out_row[o] = bias[o];
    }
    beta = 1.f;
  }
  // out (N, OC) = inp (N, C) * weight^T.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.f, inp, C, weight, C, beta, out,
              OC);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC) {
  // dinp (N, C) += dout (N, OC) * weight (OC, C).
  if (dinp != nullptr) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.f, dout, OC, weight, C, 1.f,
                dinp, C);
  }
  // dweight (OC, C) += dout^T (OC, N) * inp (N, C).
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.f, dout, OC, inp, C, 1.f,
              dweight, C);
  if (dbias != nullptr) {
    // Column sums of dout: each thread owns a block of columns and walks the rows in order,
    // so that the reads stay contiguous.
    constexpr int kBlock = 64;
#pragma omp parallel for
    for (int first = 0; first < OC; first += kBlock) {
      const int last = std::min(first + kBlock, OC);
      for (int n = 0; n < N; ++n) {
        const float* dout_row = dout + static_cast<int64_t>(n) * OC;
        for (int o = first; o < last; ++o) dbias[o] += dout_row[o];
      }
    }
  }
}

}  // namespace dgqa::cpu
