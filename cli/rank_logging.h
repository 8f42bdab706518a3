// Where each rank's log goes: rank 0 logs to stderr; every other rank to its own glog file
// (OUT/logs/rank<R>.log.*, or the temp directory without --out), with errors also on stderr.
#pragma once

#include <string>

#include "comm/communicator.h"

namespace dgqa {

void configure_rank_logging(const RankInfo& info, const std::string& out_dir);

}  // namespace dgqa
