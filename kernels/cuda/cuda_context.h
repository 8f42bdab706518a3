// The CUDA state every kernel shares: the device, one stream, the cuBLAS handle bound to it, and a
// cuBLASLt handle (cuBLASLt takes the stream with each call).
// Errors of CUDA and cuBLAS calls become std::runtime_error naming the call, file and line.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace dgqa::cuda {

struct CudaContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cublasLtHandle_t cublaslt = nullptr;  // the bf16 matrix products (matmul.cu)
};

// The process's context, created on first use on the current device (see select_device).
CudaContext& context();

// Chooses the GPU of this process before first use: local_rank % visible device count.
void select_device(int local_rank);

// The number of visible GPUs (0 when there is none or no driver).
int device_count();

[[noreturn]] void throw_cuda_error(const char* call, const char* error, const char* file, int line);

}  // namespace dgqa::cuda

#define DGQA_CUDA_CHECK(call)                                                                     \
  do {                                                                                            \
    const cudaError_t dgqa_status = (call);                                                       \
    if (dgqa_status != cudaSuccess)                                                               \
      ::dgqa::cuda::throw_cuda_error(#call, cudaGetErrorString(dgqa_status), __FILE__, __LINE__); \
  } while (0)

#define DGQA_CUBLAS_CHECK(call)                                                           \
  do {                                                                                    \
    const cublasStatus_t dgqa_status = (call);                                            \
    if (dgqa_status != CUBLAS_STATUS_SUCCESS)                                             \
      ::dgqa::cuda::throw_cuda_error(#call, cublasGetStatusString(dgqa_status), __FILE__, \
                                     __LINE__);                                           \
  } while (0)

// After a kernel launch: reports a bad launch configuration at once, naming the kernel.
#define DGQA_CUDA_CHECK_LAUNCH() DGQA_CUDA_CHECK(cudaGetLastError())
