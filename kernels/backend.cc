#include "kernels/backend.h"

#include "common/error.h"
#include "kernels/cpu/cpu_backend.h"

namespace dgqa {

// A CUDA build will add "cuda" here once kernels/cuda has its backend.
std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return std::make_unique<CpuBackend>();
  throw InputError("unknown backend \"" + name + "\" (valid backends: cpu)");
}

}  // namespace dgqa
