#include "kernels/cuda/cuda_context.h"

namespace dgqa::cuda {

namespace {

// The device select_device chose; context() creates everything on it.
int selected_device = 0;
bool context_created = false;

CudaContext* create_context() {
  auto* created = new CudaContext;
  created->device = selected_device;
  DGQA_CUDA_CHECK(cudaSetDevice(created->device));
  // Non-blocking: the stream does not wait for the legacy default stream.
  DGQA_CUDA_CHECK(cudaStreamCreateWithFlags(&created->stream, cudaStreamNonBlocking));
  DGQA_CUBLAS_CHECK(cublasCreate(&created->cublas));
  DGQA_CUBLAS_CHECK(cublasSetStream(created->cublas, created->stream));
  // Plain fp32 GEMMs, never TF32: results stay close to the CPU backend's.
  DGQA_CUBLAS_CHECK(cublasSetMathMode(created->cublas, CUBLAS_DEFAULT_MATH));
  DGQA_CUBLAS_CHECK(cublasLtCreate(&created->cublaslt));
  context_created = true;
  return created;
}

}  // namespace

CudaContext& context() {
  // Created once, thread-safely, on first use; never destroyed, because at process exit the
  // CUDA driver may already be gone when static destructors run.
  static CudaContext* const instance = create_context();
  return *instance;
}

void select_device(int local_rank) {
  const int count = device_count();
  if (count == 0) throw std::runtime_error("select_device: no GPU is visible");
  const int device = local_rank % count;
  if (context_created && device != context().device) {
    throw std::logic_error("select_device(" + std::to_string(local_rank) +
                           ") after the CUDA context was created on device " +
                           std::to_string(context().device));
  }
  // Set now, not only when the context is made, so that nothing can allocate on GPU 0 first.
  DGQA_CUDA_CHECK(cudaSetDevice(device));
  selected_device = device;
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clears the error, so that later checks do not report it again
    return 0;
  }
  return count;
}

void throw_cuda_error(const char* call, const char* error, const char* file, int line) {
  throw std::runtime_error(std::string(call) + " failed: " + error + " (" + file + ":" +
                           std::to_string(line) + ")");
}

}  // namespace dgqa::cuda
