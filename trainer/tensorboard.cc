#include "trainer/tensorboard.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "common/error.h"

namespace dgqa {
namespace {

namespace fs = std::filesystem;

constexpr char kFilePrefix[] = "events.out.tfevents.";

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// TensorBoard's name for an event file: events.out.tfevents.<seconds since the epoch>.<host>.
// A run that starts twice in one second on one host appends to the same file.
std::string new_file_path(const std::string& dir) {
  const int64_t seconds = static_cast<int64_t>(wall_time_now());
  return dir + "/" + kFilePrefix + std::to_string(seconds) + "." + host_name();
}

// The temporary file of a rewrite killed midway (common/atomic_file.h: <path>.tmp.<pid>).
bool is_leftover(const std::string& name) {
  const size_t tmp = name.rfind(".tmp.");
  return tmp != std::string::npos && tmp + 5 < name.size() &&
         name.find_first_not_of("0123456789", tmp + 5) == std::string::npos;
}

}  // namespace

TensorBoardLog::TensorBoardLog(const std::string& dir) {
  if (dir.empty()) return;
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw InputError("cannot create " + dir + ": " + error.message());
  file_ = std::make_unique<EventFileWriter>(new_file_path(dir));
}

void TensorBoardLog::scalar(const std::string& tag, double value) {
  if (file_) scalars_.push_back({tag, static_cast<float>(value)});
}

void TensorBoardLog::write_step(int64_t step) {
  if (!file_ || scalars_.empty()) return;
  TensorBoardEvent event;
  event.wall_time = wall_time_now();
  event.step = step;
  event.scalars = std::move(scalars_);
  scalars_.clear();
  file_->write(event);
}

std::string tensorboard_dir(const config::Config& config, const std::string& out_dir, int rank) {
  if (!config.train().tensorboard() || rank != 0) return "";
  if (out_dir.empty()) {
    LOG(WARNING) << "train.tensorboard is set but there is no --out: no event files are written";
    return "";
  }
  return out_dir + "/tensorboard";
}

void truncate_tensorboard_after(const std::string& dir, int64_t step) {
  std::error_code error;
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kFilePrefix, 0) != 0 || !entry.is_regular_file()) continue;
    if (is_leftover(name)) {
      LOG(WARNING) << "Removing " << entry.path().string() << ", left by an interrupted rewrite";
      fs::remove(entry.path());
      continue;
    }
    files.push_back(entry.path());
  }
  if (error && error != std::errc::no_such_file_or_directory) {
    throw InputError("cannot list " + dir + ": " + error.message());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) truncate_event_file_after(file.string(), step);
}

}  // namespace dgqa
