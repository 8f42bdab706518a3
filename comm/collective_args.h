// Argument checks shared by the Communicator backends, done before a collective starts, so
// bad arguments fail the same way with or without MPI.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dgqa {

inline void check_collective_count(int64_t count, const void* data, const char* what) {
  if (count < 0) {
    throw std::invalid_argument(std::string(what) + ": negative count " + std::to_string(count));
  }
  if (count > 0 && data == nullptr) {
    throw std::invalid_argument(std::string(what) + ": no buffer for " + std::to_string(count) +
                                " elements");
  }
}

inline void check_collective_root(int root, int world_size, const char* what) {
  if (root < 0 || root >= world_size) {
    throw std::invalid_argument(std::string(what) + ": root " + std::to_string(root) +
                                " is not a rank of " + std::to_string(world_size));
  }
}

// The bounds of all_gather_ranges: world_size + 1 non-decreasing offsets from 0, data for them.
inline void check_collective_ranges(const std::vector<int64_t>& bounds, int world_size,
                                    const void* data, const char* what) {
  bool valid = bounds.size() == static_cast<size_t>(world_size) + 1 && bounds.front() >= 0;
  for (size_t i = 1; valid && i < bounds.size(); ++i) valid = bounds[i - 1] <= bounds[i];
  if (!valid) {
    throw std::invalid_argument(std::string(what) + ": the ranges are not " +
                                std::to_string(world_size + 1) +
                                " non-decreasing offsets from 0 or above");
  }
  check_collective_count(bounds.back(), data, what);
}

inline void check_collective_timeout(double timeout_s) {
  if (!(timeout_s > 0) || !std::isfinite(timeout_s)) {
    throw std::invalid_argument("communicator timeout " + std::to_string(timeout_s) +
                                " s is not a positive number of seconds");
  }
}

}  // namespace dgqa
