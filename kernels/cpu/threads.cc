#include "kernels/cpu/threads.h"

#include <omp.h>

namespace dgqa::cpu {

int set_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
  return omp_get_max_threads();
}

}  // namespace dgqa::cpu
