#include "comm/communicator.h"

#include <glog/logging.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "comm/collective_args.h"
#include "comm/launch_env.h"
#include "comm/local_communicator.h"
#include "comm/mpi_communicator.h"

namespace dgqa {

void Communicator::all_reduce_average(float* data, int64_t count, const char* what) {
  all_reduce_sum(data, count, what);
  if (world_size() == 1) return;
  const float ranks = static_cast<float>(world_size());
  for (int64_t i = 0; i < count; ++i) data[i] /= ranks;
}

std::unique_ptr<Communicator> make_communicator(double timeout_s) {
  check_collective_timeout(timeout_s);
  const RankInfo info = detect_rank_info();
  if (info.world_size == 1) return make_local_communicator(info);
  return make_mpi_communicator(info, timeout_s);
}

void abort_job(int exit_code) {
  // Neither exit path flushes buffered output: do it now, so the reason for the abort is seen.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  google::FlushLogFiles(google::GLOG_INFO);
  if (mpi_is_active()) abort_all_mpi_ranks(exit_code);
  std::_Exit(exit_code);
}

}  // namespace dgqa
