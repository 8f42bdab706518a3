#include "kernels/backend.h"

#include "common/error.h"
#include "kernels/cpu/cpu_backend.h"
#ifdef DGQA_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_context.h"
#endif

namespace dgqa {

std::unique_ptr<Backend> make_backend(const BackendOptions& options) {
  if (options.name == "cpu") {
    if (options.precision != Precision::kFP32) {
      throw InputError(
          "model.precision: BF16 needs train.backend \"cuda\" (the CPU computes in fp32)");
    }
    return std::make_unique<CpuBackend>();
  }
#ifdef DGQA_WITH_CUDA
  if (options.name == "cuda") {
    if (cuda::device_count() == 0) {
      throw InputError("train.backend: \"cuda\" but no GPU is visible");
    }
    cuda::select_device(options.local_rank);
    return std::make_unique<CudaBackend>(options.precision);
  }
  throw InputError("unknown backend \"" + options.name + "\" (valid backends: cpu, cuda)");
#else
  throw InputError("unknown backend \"" + options.name + "\" (valid backends: cpu)");
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  BackendOptions options;
  options.name = name;
  return make_backend(options);
}

}  // namespace dgqa
