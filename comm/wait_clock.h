// How long a rank has waited for a collective, counting only the time it was running
// (Note [Naming a late rank] in comm/communicator.h). A wait polls its collective in a loop; the
// time between two polls counts in full up to kMaxPollGap seconds, and as kMaxPollGap beyond
// that: a longer gap means the process did not run (it was stopped, or the machine is
// overloaded) or did other work between polls (an overlapped collective tested between layers),
// and neither is time spent waiting for the peers.
#pragma once

#include <algorithm>

#include "common/stopwatch.h"

namespace dgqa {

class WaitClock {
 public:
  static constexpr double kMaxPollGap = 1.0;

  // Called at every poll: the seconds waited so far, this poll's gap included.
  double poll() {
    waited_ += std::min(since_last_poll_.lap(), kMaxPollGap);
    return waited_;
  }

 private:
  Stopwatch since_last_poll_;
  double waited_ = 0;
};

}  // namespace dgqa
