#include "kernels/backend.h"

#include "common/error.h"
#include "kernels/cpu/cpu_backend.h"
#ifdef DGQA_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_context.h"
#endif

namespace dgqa {

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return std::make_unique<CpuBackend>();
#ifdef DGQA_WITH_CUDA
  if (name == "cuda") {
    if (cuda::device_count() == 0) {
      throw InputError("train.backend: \"cuda\" but no GPU is visible");
    }
    return std::make_unique<CudaBackend>();
  }
  throw InputError("unknown backend \"" + name + "\" (valid backends: cpu, cuda)");
#else
  throw InputError("unknown backend \"" + name + "\" (valid backends: cpu)");
#endif
}

}  // namespace dgqa
