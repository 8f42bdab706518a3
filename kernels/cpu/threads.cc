#include "kernels/cpu/threads.h"

#include <cblas.h>
#include <omp.h>

#include <stdexcept>
#include <string>

namespace dgqa::cpu {

int set_threads(int n) {
  if (n < 0 || n > kMaxThreads) {
    throw std::invalid_argument("set_threads: " + std::to_string(n) + " is outside [0, " +
                                std::to_string(kMaxThreads) + "]");
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
