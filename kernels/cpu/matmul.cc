#include "kernels/cpu/matmul.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/threads.h"
#include "kernels/cpu/vector_math.h"

namespace dgqa::cpu {

namespace {

// How OpenBLAS's sgemm computes a row of row-major C can depend on the number of rows M of the
// call: its Haswell kernels (which it also picks on AMD Zen) sweep C in panels of 12 rows and
// compute a partial last panel in another order. Then a row's bits would depend on the batch a
// rank holds, and N ranks would not compute what one rank computes. The panel height is found
// once, by experiment: the smallest P such that the rows of products with any multiple of P
// rows have the same bits as in a larger product (1: rows never depend on M, as with OpenBLAS's
// SkylakeX kernels). Products then run in whole panels (parallel_sgemm pads the last one).
int detect_row_panel() {
  constexpr int kN = 64, kK = 96, kRows = 96;  // 96: a multiple of every candidate
  std::vector<float> A(kRows * kK), B(kN * kK);
  uint32_t state = 12345;  // any fixed values in [-1, 1)
  for (float& x : A)
    x = static_cast<float>((state = state * 1664525u + 1013904223u) >> 8) / 8388608.f - 1.f;
  for (float& x : B)
    x = static_cast<float>((state = state * 1664525u + 1013904223u) >> 8) / 8388608.f - 1.f;
  auto product = [&](int rows) {
    std::vector<float> C(rows * kN);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kN, kK, 1.f, A.data(), kK, B.data(),
                kK, 0.f, C.data(), kN);
    return C;
  };
  const std::vector<float> reference = product(kRows);
  auto rows_agree = [&](int rows) {
    const std::vector<float> C = product(rows);
    return std::equal(C.begin(), C.end(), reference.begin());
  };
  for (int panel : {1, 2, 4, 6, 8, 12, 16, 24, 32, 48}) {
    bool agree = true;
    for (int rows = panel; rows < kRows && agree; rows += panel) agree = rows_agree(rows);
    if (agree) return panel;
  }
  return kRows;
}

int row_panel() {
  static const int panel = [] {
    run_blas_on_calling_thread();
    return detect_row_panel();
  }();
  return panel;
}

// One sgemm on rows [first, first + rows) of C, as a product of `padded` >= rows rows: the rows
// of op(A) and C are copied into scratch buffers with zero rows after them, so that OpenBLAS sees
// whole panels, and the real rows of C are copied back.
void padded_rows_sgemm(CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b, int64_t first, int rows,
                       int padded, int N, int K, const float* A, int lda, const float* B, int ldb,
                       float beta, float* C, int ldc) {
  thread_local std::vector<float> a_rows, c_rows;  // grown once, reused by every call
  a_rows.assign(static_cast<size_t>(padded) * K, 0.f);
  c_rows.assign(static_cast<size_t>(padded) * N, 0.f);
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < K; ++k) {
      // Row first + r of op(A): a row of A, or a column of A when it is transposed.
      a_rows[static_cast<size_t>(r) * K + k] = trans_a == CblasNoTrans
                                                   ? A[(first + r) * lda + k]
                                                   : A[static_cast<int64_t>(k) * lda + first + r];
    }
    if (beta != 0.f)
      std::copy_n(C + (first + r) * ldc, N, c_rows.data() + static_cast<size_t>(r) * N);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b, padded, N, K, 1.f, a_rows.data(), K, B, ldb,
              beta, c_rows.data(), N);
  for (int r = 0; r < rows; ++r) {
    std::copy_n(c_rows.data() + static_cast<size_t>(r) * N, N, C + (first + r) * ldc);
  }
}

// C (M, N) = op(A) op(B) + beta C, row-major, with the rows of C split over the OpenMP threads,
// one single-threaded sgemm each.
//
// Row i of C gets the same bits whatever the number of threads and whatever M: pieces start at
// multiples of the row panel and the last, partial panel is computed padded to a whole one
// (row_panel above). Not whatever i, though: with the 12-row panels, a row's bits depend on its
// place in its panel (i mod 12), so a rank's rows, which start its own products, can differ in
// the last bits from the same rows in one process's product (tests/dist_test.cc compares ranks
// to rounding for that reason). Also, OpenBLAS's small-matrix kernels
// (products of up to 100^3 multiply-adds, on AVX-512 machines) add in another order than its
// blocked kernels, so pieces have at least kMinPiece multiply-adds; and only rows are cut
// (cutting the columns of C changed results at every alignment tried).
// tests/kernels_matmul_test.cc (MatmulThreadsTest, MatmulRowsTest) checks this on every machine
// it runs on.
void parallel_sgemm(CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b, int M, int N, int K,
                    const float* A, int lda, const float* B, int ldb, float beta, float* C,
                    int ldc) {
  constexpr double kMinPiece = 1 << 21;
  run_blas_on_calling_thread();
  const int64_t panel = row_panel();
  const int64_t whole = M / panel * panel;  // rows in whole panels
  const int64_t panels = whole / panel;
  const double work = static_cast<double>(whole) * N * K;
  const int64_t max_pieces = std::max<int64_t>(1, static_cast<int64_t>(work / kMinPiece));
  const int64_t pieces = std::min<int64_t>({max_pieces, omp_get_max_threads(), panels});
#pragma omp parallel for schedule(static) if (pieces > 1)
  for (int64_t piece = 0; piece < pieces; ++piece) {
    const int64_t first = panels * piece / pieces * panel;
    const int64_t count = panels * (piece + 1) / pieces * panel - first;
    // Rows first.. of op(A) are rows of A, or columns of A when it is transposed.
    const float* A_part = trans_a == CblasNoTrans ? A + first * lda : A + first;
    cblas_sgemm(CblasRowMajor, trans_a, trans_b, static_cast<int>(count), N, K, 1.f, A_part, lda, B,
                ldb, beta, C + first * ldc, ldc);
  }
  if (whole < M) {
    padded_rows_sgemm(trans_a, trans_b, whole, static_cast<int>(M - whole), static_cast<int>(panel),
                      N, K, A, lda, B, ldb, beta, C, ldc);
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
  parallel_sgemm(CblasNoTrans, CblasTrans, N, OC, C, inp, C, weight, C, beta, out, OC);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC) {
  // dinp (N, C) += dout (N, OC) weight (OC, C).
  if (dinp != nullptr) {
    parallel_sgemm(CblasNoTrans, CblasNoTrans, N, C, OC, dout, OC, weight, C, 1.f, dinp, C);
  }
  // dweight (OC, C) += dout^T (OC, N) inp (N, C).
  parallel_sgemm(CblasTrans, CblasNoTrans, OC, C, N, dout, OC, inp, C, 1.f, dweight, C);
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
