// How many threads the CPU kernels use. OpenMP owns the threads: OpenBLAS runs single-threaded
// inside each OpenMP task (run_blas_on_calling_thread below).
#pragma once

namespace dgqa::cpu {

// The most threads set_threads takes (train.threads). A fixed bound, not a multiple of the
// cores, so that whether a config is valid does not depend on the machine that checks it; it
// is above the cores of any one machine dgqa runs on, and far below the counts that crash
// OpenMP (100000 threads overflow a stack inside libgomp's team start: SIGSEGV).
constexpr int kMaxThreads = 1024;

// 0 < n <= kMaxThreads sets OpenMP's thread count. n == 0 keeps OMP_NUM_THREADS when it is set,
// else takes the cores this process may run on, but no more than the machine's cores shared
// out among the ranks_on_machine ranks that run on it (at least 1): ranks started without a
// thread count would otherwise each start a thread per core, and OpenMP's spinning threads
// slow an oversubscribed machine down many times over. Returns the count in use. Other n throw
// std::invalid_argument (validate_config refuses them first).
int set_threads(int n, int ranks_on_machine = 1);

// Makes OpenBLAS run each following BLAS call on the calling thread, using no threads of its own.
// Call it before cblas_* calls made from OpenMP code. All CPU parallelism is OpenMP's. OpenBLAS's
// pthreads build (Debian's default) keeps a thread pool of its own that knows nothing of OpenMP:
// a gemm called inside a parallel region starts its threads on top of ours (attention ran 350
// times slower on 16 cores), and between kernels the two pools spin against each other. So that
// build is set to one thread; its OpenMP build runs on the calling thread by itself inside a
// parallel region and is left alone (for it, openblas_set_num_threads would set OpenMP's thread
// count). Cheap enough for every call: set_threads or anyone else may have raised the count.
void run_blas_on_calling_thread();

}  // namespace dgqa::cpu
