#include "comm/launch_env.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <optional>
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

// How many ranks share this node, and the variable that said so ("" when none did: 1).
struct LocalSize {
  int size = 1;
  std::string variable;
};

LocalSize read_local_size_variable(const char* name) {
  if (!is_set(name)) return {};
  const int size = parse_non_negative(name, std::getenv(name));
  if (size == 0) throw InputError(std::string("environment variable ") + name + "=0: no ranks");
  return {size, name};
}

// A positive count that is the whole of text, or nothing.
std::optional<int> positive_count(const std::string& text) {
  int value = 0;
  const auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || stop != text.data() + text.size() || value <= 0) {
    return std::nullopt;
  }
  return value;
}

// SLURM's task layout ("2(x3),1": 2 tasks on each of 3 nodes, then 1) at this node's index. The
// whole layout is checked, not only the entries before this node's.
LocalSize read_slurm_local_size() {
  const char* name = "SLURM_STEP_TASKS_PER_NODE";
  if (!is_set(name) || !is_set("SLURM_NODEID")) return {};
  const int node = parse_non_negative("SLURM_NODEID", std::getenv("SLURM_NODEID"));
  const std::string layout = std::getenv(name);
  LocalSize local;  // stays unknown when the layout lists fewer nodes: SLURM_NODEID counts the
                    // job's nodes, and a step may run on fewer
  int64_t first_node = 0;  // 64 bits: the counts of a long layout add up past INT_MAX
  size_t start = 0;
  do {
    const size_t end = std::min(layout.find(',', start), layout.size());
    const std::string entry = layout.substr(start, end - start);
    const size_t repeat = entry.find("(x");
    const std::optional<int> tasks = positive_count(entry.substr(0, repeat));
    std::optional<int> nodes = 1;
    if (repeat != std::string::npos) {
      nodes = entry.back() == ')'
                  ? positive_count(entry.substr(repeat + 2, entry.size() - repeat - 3))
                  : std::nullopt;
    }
    if (!tasks || !nodes) {
      throw InputError(std::string("environment variable ") + name + "='" + layout +
                       "' is not a task layout such as 2(x3),1");
    }
    if (node >= first_node && node < first_node + *nodes) local = {*tasks, name};
    first_node += *nodes;
    start = end + 1;
  } while (start <= layout.size());
  return local;
}

LocalSize read_openmpi_local_size() {
  return read_local_size_variable("OMPI_COMM_WORLD_LOCAL_SIZE");
}

LocalSize read_pmi_local_size() {
  return read_local_size_variable("MPI_LOCALNRANKS");
}

RankInfo read_launcher(const char* launcher, const char* rank_name, const char* size_name,
                       std::initializer_list<const char*> local_rank_names,
                       LocalSize (*read_local_size)()) {
  RankInfo info;
  info.launcher = launcher;
  info.world_size = read_required(size_name, launcher);
  if (info.world_size == 0) {
    throw InputError(std::string("environment variable ") + size_name + "=0: no ranks");
  }
  info.rank = read_required(rank_name, launcher);
  check_below_size(rank_name, info.rank, size_name, info.world_size);
  const char* local_rank_variable = nullptr;
  for (const char* local_rank_name : local_rank_names) {
    if (!is_set(local_rank_name)) continue;
    info.local_rank = parse_non_negative(local_rank_name, std::getenv(local_rank_name));
    check_below_size(local_rank_name, info.local_rank, size_name, info.world_size);
    local_rank_variable = local_rank_name;
    break;
  }
  const LocalSize local = read_local_size();
  if (local.variable.empty()) return info;
  if (local.size > info.world_size) {
    throw InputError("environment variable " + local.variable + " gives " +
                     std::to_string(local.size) + " ranks on this node, more than " + size_name +
                     "=" + std::to_string(info.world_size));
  }
  if (local_rank_variable != nullptr) {
    check_below_size(local_rank_variable, info.local_rank, local.variable.c_str(), local.size);
  }
  info.local_size = local.size;
  return info;
}

}  // namespace

RankInfo detect_rank_info() {
  if (is_set("OMPI_COMM_WORLD_RANK") || is_set("OMPI_COMM_WORLD_SIZE")) {
    return read_launcher("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                         {"OMPI_COMM_WORLD_LOCAL_RANK"}, read_openmpi_local_size);
  }
  if (is_set("SLURM_PROCID") && is_set("SLURM_NTASKS")) {
    return read_launcher("slurm", "SLURM_PROCID", "SLURM_NTASKS", {"SLURM_LOCALID"},
                         read_slurm_local_size);
  }
  if (is_set("PMI_RANK")) {
    return read_launcher("pmi", "PMI_RANK", "PMI_SIZE", {"MPI_LOCALRANKID", "PMI_LOCAL_RANK"},
                         read_pmi_local_size);
  }
  if (is_set("PMIX_RANK")) {
    return read_launcher("pmi", "PMIX_RANK", "PMI_SIZE", {"MPI_LOCALRANKID", "PMI_LOCAL_RANK"},
                         read_pmi_local_size);
  }
  return RankInfo{};
}

}  // namespace dgqa
