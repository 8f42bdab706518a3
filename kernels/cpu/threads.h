// How many threads the CPU kernels use. OpenMP owns the threads: OpenBLAS runs single-threaded
// inside each OpenMP task (see kernels/cpu/matmul.cc).
#pragma once

namespace dgqa::cpu {

// n > 0 sets OpenMP's thread count; n == 0 leaves the default (all cores, or
// OMP_NUM_THREADS when set). Returns the count in use.
int set_threads(int n);

}  // namespace dgqa::cpu
