#include "kernels/cpu/threads.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

namespace dgqa::cpu {

int set_threads(int n, int ranks_on_machine) {
  if (n < 0 || n > kMaxThreads) {
    throw std::invalid_argument("set_threads: " + std::to_string(n) + " is outside [0, " +
                                std::to_string(kMaxThreads) + "]");
  }
  if (n == 0 && std::getenv("OMP_NUM_THREADS") == nullptr && ranks_on_machine > 1) {
    const int machine_cores = static_cast<int>(std::thread::hardware_concurrency());  // 0: unknown
    if (machine_cores > 0) {
      n = std::max(1, std::min(omp_get_max_threads(), machine_cores / ranks_on_machine));
    }
  }
  if (n > 0) omp_set_num_threads(n);
  return omp_get_max_threads();
}

void run_blas_on_calling_thread() {
  // Checked on every call (it costs a load): set_threads or anyone else may have raised it.
  if (openblas_get_parallel() == 1 && openblas_get_num_threads() != 1) {
    openblas_set_num_threads(1);
  }
}

}  // namespace dgqa::cpu
