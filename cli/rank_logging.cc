#include "cli/rank_logging.h"

#include <glog/logging.h>

#include <filesystem>

namespace dgqa {

void configure_rank_logging(const RankInfo& info, const std::string& out_dir) {
  if (info.rank == 0) return;  // main() already logs to stderr
  std::filesystem::path directory = out_dir.empty() ? std::filesystem::temp_directory_path()
                                                    : std::filesystem::path(out_dir) / "logs";
  std::error_code error;
  std::filesystem::create_directories(directory, error);  // on failure glog falls back to stderr
  FLAGS_logtostderr = false;
  FLAGS_stderrthreshold = google::GLOG_ERROR;
  const std::string base = (directory / ("rank" + std::to_string(info.rank) + ".log.")).string();
  google::SetLogDestination(google::GLOG_INFO, base.c_str());
  // One file per rank: the INFO file holds every severity, so no separate WARNING/ERROR files.
  google::SetLogDestination(google::GLOG_WARNING, "");
  google::SetLogDestination(google::GLOG_ERROR, "");
  google::SetLogDestination(google::GLOG_FATAL, "");
}

}  // namespace dgqa
