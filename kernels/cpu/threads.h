// How many threads the CPU kernels use (OpenMP loops and OpenBLAS).
#pragma once

namespace dgqa::cpu {

// n > 0 sets both OpenMP's and OpenBLAS's thread counts; n == 0 leaves the defaults
// (all cores, or OMP_NUM_THREADS / OPENBLAS_NUM_THREADS when set). Returns the count in use.
int set_threads(int n);

}  // namespace dgqa::cpu
