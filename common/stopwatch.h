// Wall-clock time on the monotonic clock: the one timer of the program (progress and
// throughput, bench phases, the kernel profile, collective timeouts).
#pragma once

#include <chrono>

namespace dgqa {

class Stopwatch {
 public:
  Stopwatch() : start_(Clock::now()) {}

  // Seconds since construction or the last restart() or lap().
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  void restart() { start_ = Clock::now(); }
  // seconds(), and the next lap starts now.
  double lap() {
    const Clock::time_point now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    start_ = now;
    return elapsed;
  }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
};

}  // namespace dgqa
