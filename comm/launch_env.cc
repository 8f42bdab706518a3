#include "comm/launch_env.h"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

#include "common/error.h"

namespace dgqa {
namespace {

bool is_set(const char* name) {
  return std::getenv(name) != nullptr;
}

int parse_non_negative(const char* name, const char* value) {
  const char* end = value + std::strlen(value);
  int parsed = -1;
  const auto [stop, error] = std::from_chars(value, end, parsed);
  if (value == end || error != std::errc() || stop != end || parsed < 0) {
    throw InputError(std::string("environment variable ") + name + "='" + value +
                     "' is not a non-negative integer");
  }
  return parsed;
}

int read_required(const char* name, const char* launcher) {
  const char* value = std::getenv(name);
  if (value == nullptr) {
    throw InputError(std::string("environment variable ") + name + " is not set, but other " +
                     launcher + " launch variables are");
  }
  return parse_non_negative(name, value);
}

// Checks an index (rank or local rank) read from index_name against the world size.
void check_below_size(const char* index_name, int index, const char* size_name, int size) {
  if (index >= size) {
    throw InputError(std::string("environment variable ") + index_name + "=" +
                     std::to_string(index) + " is not below " + size_name + "=" +
                     std::to_string(size));
  }
}

RankInfo read_launcher(const char* launcher, const char* rank_name, const char* size_name,
                       std::initializer_list<const char*> local_rank_names) {
  RankInfo info;
  info.launcher = launcher;
  info.world_size = read_required(size_name, launcher);
  if (info.world_size == 0) {
    throw InputError(std::string("environment variable ") + size_name + "=0: no ranks");
  }
  info.rank = read_required(rank_name, launcher);
  check_below_size(rank_name, info.rank, size_name, info.world_size);
  for (const char* local_rank_name : local_rank_names) {
    if (!is_set(local_rank_name)) continue;
    info.local_rank = parse_non_negative(local_rank_name, std::getenv(local_rank_name));
    check_below_size(local_rank_name, info.local_rank, size_name, info.world_size);
    break;
  }
  return info;
}

}  // namespace

RankInfo detect_rank_info() {
  if (is_set("OMPI_COMM_WORLD_RANK") || is_set("OMPI_COMM_WORLD_SIZE")) {
    return read_launcher("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                         {"OMPI_COMM_WORLD_LOCAL_RANK"});
  }
  if (is_set("SLURM_PROCID") && is_set("SLURM_NTASKS")) {
    return read_launcher("slurm", "SLURM_PROCID", "SLURM_NTASKS", {"SLURM_LOCALID"});
  }
  if (is_set("PMI_RANK")) {
    return read_launcher("pmi", "PMI_RANK", "PMI_SIZE", {"MPI_LOCALRANKID", "PMI_LOCAL_RANK"});
  }
  if (is_set("PMIX_RANK")) {
    return read_launcher("pmi", "PMIX_RANK", "PMI_SIZE", {"MPI_LOCALRANKID", "PMI_LOCAL_RANK"});
  }
  return RankInfo{};
}

}  // namespace dgqa
