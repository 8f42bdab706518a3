#include "kernels/cpu/matmul.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/vector_math.h"

namespace dgqa::cpu {

namespace {

// All CPU parallelism is OpenMP's. OpenBLAS's pthreads build (Debian's default) keeps a thread
// pool of its own that knows nothing of OpenMP: a gemm called inside a parallel region starts its
// threads on top of ours (attention ran 350 times slower on 16 cores), and between kernels the two
// pools spin against each other. So that build runs every call on the calling thread (its OpenMP
// build does that by itself inside a parallel region, and must not be told: for it,
// openblas_set_num_threads would set OpenMP's thread count).
void RunBlasOnCallingThread() {
  // Checked on every call (it costs a load): cpu::set_threads or anyone else may have raised it.
  if (openblas_get_parallel() == 1 && openblas_get_num_threads() != 1) {
    openblas_set_num_threads(1);
  }
}

// C (M, N) = op(A) op(B) + beta C, row-major, with the rows of C (or its columns, when it has more
// columns than rows) split evenly over the OpenMP threads, one single-threaded sgemm each.
//
// The results do not depend on the number of threads, as long as every piece stays out of
// OpenBLAS's small-matrix kernels (products of up to 100^3 multiply-adds on AVX-512 machines),
// which add in another order than the blocked kernels: the blocked kernels give each element
// of C the same bits whichever piece it falls in (tests/kernels_matmul_test.cc checks both).
// So a product is cut only into pieces of at least kMinPiece multiply-adds (2M: twice that
// threshold).
void ParallelSgemm(CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b, int M, int N, int K,
                   const float* A, int lda, const float* B, int ldb, float beta, float* C,
                   int ldc) {
  constexpr double kMinPiece = 1 << 21;
  RunBlasOnCallingThread();
  const bool split_rows = M >= N;
  const int64_t length = split_rows ? M : N;
  const double work = static_cast<double>(M) * N * K;
  const int64_t max_pieces = std::max<int64_t>(1, static_cast<int64_t>(work / kMinPiece));
  const int64_t pieces = std::min<int64_t>({max_pieces, omp_get_max_threads(), length});
#pragma omp parallel for schedule(static) if (pieces > 1)
  for (int64_t piece = 0; piece < pieces; ++piece) {
    const int64_t first = length * piece / pieces, last = length * (piece + 1) / pieces;
    const int count = static_cast<int>(last - first);
    if (split_rows) {
      // Rows first.. of op(A) are rows of A, or columns of A when it is transposed.
      const float* A_part = trans_a == CblasNoTrans ? A + first * lda : A + first;
      cblas_sgemm(CblasRowMajor, trans_a, trans_b, count, N, K, 1.f, A_part, lda, B, ldb, beta,
                  C + first * ldc, ldc);
    } else {
      // Columns first.. of op(B) are columns of B, or rows of B when it is transposed.
      const float* B_part = trans_b == CblasNoTrans ? B + first : B + first * ldb;
      cblas_sgemm(CblasRowMajor, trans_a, trans_b, M, count, K, 1.f, A, lda, B_part, ldb, beta,
                  C + first, ldc);
    }
  }
}

// dbias[first..last) += the column sums of dout's columns first..last, rows in order (so each
// sum has the same order for any number of threads or vector width).
DGQA_SIMD_CLONES void add_column_sums(float* dbias, const float* dout, int N, int OC, int first,
                                      int last) {
  for (int n = 0; n < N; ++n) {
    const float* dout_row = dout + static_cast<int64_t>(n) * OC;
#pragma omp simd
    for (int o = first; o < last; ++o) dbias[o] += dout_row[o];
  }
}

}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC) {
  // With a bias, every row of out starts as the bias and the product is added to it (beta = 1).
  float beta = 0.f;
  if (bias != nullptr) {
#pragma omp parallel for
    for (int n = 0; n < N; ++n) std::copy(bias, bias + OC, out + static_cast<int64_t>(n) * OC);
    beta = 1.f;
  }
  // out (N, OC) = inp (N, C) weight^T.
  ParallelSgemm(CblasNoTrans, CblasTrans, N, OC, C, inp, C, weight, C, beta, out, OC);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC) {
  // dinp (N, C) += dout (N, OC) weight (OC, C).
  if (dinp != nullptr) {
    ParallelSgemm(CblasNoTrans, CblasNoTrans, N, C, OC, dout, OC, weight, C, 1.f, dinp, C);
  }
  // dweight (OC, C) += dout^T (OC, N) inp (N, C).
  ParallelSgemm(CblasTrans, CblasNoTrans, OC, C, N, dout, OC, inp, C, 1.f, dweight, C);
  if (dbias != nullptr) {
    // Column sums of dout: each thread owns a block of columns and walks the rows in order,
    // so that the reads stay contiguous.
    constexpr int kBlock = 64;
#pragma omp parallel for
    for (int first = 0; first < OC; first += kBlock) {
      add_column_sums(dbias, dout, N, OC, first, std::min(first + kBlock, OC));
    }
  }
}

}  // namespace dgqa::cpu
