#include "comm/communicator.h"

#include <glog/logging.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include "comm/collective_args.h"
#include "comm/launch_env.h"
#include "comm/local_communicator.h"
#include "comm/mpi_communicator.h"
#include "common/error.h"

namespace dgqa {

std::unique_ptr<Communicator> make_communicator(double timeout_s) {
  check_collective_timeout(timeout_s);
  const RankInfo info = detect_rank_info();
  if (info.world_size == 1) return make_local_communicator(info);
  return make_mpi_communicator(info, timeout_s);
}

int64_t sum_over_ranks(Communicator& comm, int64_t value, const char* what) {
  int64_t total = 0;
  for (uint64_t part : comm.all_gather(static_cast<uint64_t>(value), what)) {
    total += static_cast<int64_t>(part);
  }
  return total;
}

namespace {

// Writes a line to glog's log files only: it is already on stderr. glog writes no files when it
// logs to stderr or was never initialised; otherwise it copies errors to stderr, which is turned
// off here for good, as the process is about to end.
void log_to_files_only(const std::string& line) {
  if (!google::IsGoogleLoggingInitialized() || FLAGS_logtostderr) return;
  FLAGS_alsologtostderr = false;
  FLAGS_stderrthreshold = google::NUM_SEVERITIES;
  LOG(ERROR) << line;
  google::FlushLogFiles(google::GLOG_INFO);
}

}  // namespace

void Communicator::abort_on_timeout(const char* what, int64_t sequence, double timeout_s) {
  abort_job_on_timeout(rank(), what, timeout_s);
}

void abort_job_on_timeout(int rank, const std::string& what, double timeout_s,
                          const std::string& late, bool after_stop) {
  std::ostringstream line;
  line << "dgqa: failed: rank " << rank << ": " << what << " did not complete within " << timeout_s
       << " s" << (after_stop ? " of a stop request" : "");
  if (late.empty()) {
    line << " (another rank died or hangs)";
  } else {
    line << ": " << late;
  }
  std::fprintf(stderr, "%s\n", line.str().c_str());
  std::fflush(stderr);
  log_to_files_only(line.str());
  abort_job(kExitFailure);
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
