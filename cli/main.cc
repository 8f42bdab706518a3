// The dgqa program: parses the command line and runs a command (docs/design.md §7), as a
// single process or as one rank of an MPI job. Bad input ends it with exit code 2 and one
// message naming the thing at fault; any other failure with exit code 1. In a multi-rank job a
// failing rank ends the whole job, so no rank is left waiting for it.
#include <glog/logging.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/bench.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/data_tools.h"
#include "cli/rank_logging.h"
#include "comm/communicator.h"
#include "comm/launch_env.h"
#include "common/error.h"
#include "trainer/config.h"
#include "trainer/preemption.h"

namespace {

std::unique_ptr<dgqa::Communicator> communicator;
int rank = 0;

int fail(const char* kind, const char* message, int exit_code) {
  if (rank == 0) {
    std::fprintf(stderr, "dgqa: %s: %s\n", kind, message);
  } else {
    std::fprintf(stderr, "dgqa: %s: rank %d: %s\n", kind, rank, message);
  }
  LOG(ERROR) << message;
  if (communicator && communicator->world_size() > 1) dgqa::abort_job(exit_code);
  return exit_code;
}

int run(const std::vector<std::string>& args) {
  const dgqa::CommandLine line = dgqa::parse_command_line(args);
  if (line.command == "help") {
    std::printf("%s", dgqa::usage_text().c_str());
    return dgqa::kExitOk;
  }
  if (line.command == "inspect") return dgqa::inspect_command(line);  // no config, no ranks
  const dgqa::RankInfo info = dgqa::detect_rank_info();
  rank = info.rank;
  dgqa::configure_rank_logging(info, line.out_dir);
  const dgqa::config::Config config = dgqa::load_config(line.config_path, line.overrides);
  communicator = dgqa::make_communicator(config.dist().timeout_s());
  if (line.command == "train") {
    dgqa::train_command(line, config, *communicator);
  } else if (line.command == "eval") {
    dgqa::eval_command(line, config, *communicator);
  } else if (line.command == "bench") {
    dgqa::bench_command(line, config, *communicator);
  } else if (line.command == "dump-data") {
    dgqa::dump_data_command(line, config, *communicator);
  } else if (line.command == "pack") {
    dgqa::pack_command(line, config, *communicator);
  } else {
    dgqa::convert_command(line, config);
  }
  communicator.reset();  // MPI_Finalize, in a multi-rank job
  return dgqa::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const dgqa::StoppedOnRequest& stopped) {
    // Every rank stopped after the same step and the checkpoint is complete: end normally.
    if (rank == 0) std::fprintf(stderr, "dgqa: %s\n", stopped.what());
    communicator.reset();
    return dgqa::kExitPreempted;
  } catch (const dgqa::InputError& error) {
    return fail("error", error.what(), dgqa::kExitInputError);
  } catch (const std::exception& error) {
    return fail("failed", error.what(), dgqa::kExitFailure);
  }
}
