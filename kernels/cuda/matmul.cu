// Linear layers through cuBLAS (fp32, no TF32: see cuda_context.cu).
//
// cuBLAS is column-major. A row-major (R, C) matrix is, in the same memory, the column-major
// (C, R) matrix of its transpose, so each row-major product X = A B is computed as the
// column-major product X^T = B^T A^T, with every "transposed" operand being the buffer as is.
#include <cstdint>

#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/kernels.h"

namespace dgqa::cuda {

namespace {

constexpr int kThreads = 256;

// out (N, OC): every row a copy of bias (OC). One thread per element, grid-stride.
__global__ void BroadcastRowsKernel(float* out, const float* bias, int64_t N, int OC) {
  const int64_t total = N * OC;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = bias[i % OC];
  }
}

// x[i] = 1 for i < n. One thread per element, grid-stride.
__global__ void FillOnesKernel(float* x, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    x[i] = 1.f;
  }
}

// Enough blocks of kThreads for n elements, capped: the kernels above loop over the rest.
int BlocksFor(int64_t n) {
  constexpr int64_t kMaxBlocks = 1 << 16;
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

// A device vector of at least n ones (dbias = dout^T ones is a gemv). Kept between calls and
// grown when a call needs more; it lives as long as the process, like the context.
const float* Ones(int n) {
  static float* ones = nullptr;
  static int length = 0;
  if (n > length) {
    CudaContext& ctx = context();
    DGQA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));  // no queued gemv still reads the old one
    DGQA_CUDA_CHECK(cudaFree(ones));
    ones = nullptr;
    length = 0;
    DGQA_CUDA_CHECK(cudaMalloc(&ones, sizeof(float) * n));
    FillOnesKernel<<<BlocksFor(n), kThreads, 0, ctx.stream>>>(ones, n);
    DGQA_CUDA_CHECK_LAUNCH();
    length = n;
  }
  return ones;
}

}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC) {
  if (N == 0 || OC == 0) return;
  CudaContext& ctx = context();
  // With a bias, every row of out starts as the bias and the product is added to it (beta = 1).
  float beta = 0.f;
  if (bias != nullptr) {
    BroadcastRowsKernel<<<BlocksFor(static_cast<int64_t>(N) * OC), kThreads, 0, ctx.stream>>>(
        out, bias, N, OC);
    DGQA_CUDA_CHECK_LAUNCH();
    beta = 1.f;
  }
  // out (N, OC) = inp (N, C) weight^T, i.e. column-major out^T (OC, N) = weight (OC, C) inp^T,
  // where the weight buffer is column-major weight^T (C, OC): transpose it.
  const float alpha = 1.f;
  DGQA_CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &alpha, weight, C,
                                inp, C, &beta, out, OC));
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC) {
  CudaContext& ctx = context();
  const float one = 1.f;  // alpha, and beta: every gradient accumulates
  // dinp (N, C) += dout (N, OC) weight (OC, C), i.e. column-major
  // dinp^T (C, N) += weight^T (C, OC) dout^T (OC, N): both buffers as they are.
  if (dinp != nullptr) {
    DGQA_CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, weight, C,
                                  dout, OC, &one, dinp, C));
  }
  // dweight (OC, C) += dout^T (OC, N) inp (N, C), i.e. column-major
  // dweight^T (C, OC) += inp^T (C, N) dout (N, OC): the dout buffer (dout^T) transposed.
  DGQA_CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp, C, dout,
                                OC, &one, dweight, C));
  // dbias (OC) += dout^T (OC, N) ones (N): the dout buffer is column-major dout^T.
  if (dbias != nullptr && N > 0) {
    DGQA_CUBLAS_CHECK(
        cublasSgemv(ctx.cublas, CUBLAS_OP_N, OC, N, &one, dout, OC, Ones(N), 1, &one, dbias, 1));
  }
}

}  // namespace dgqa::cuda
