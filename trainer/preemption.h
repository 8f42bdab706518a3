// Stopping on request: SIGTERM and SIGUSR1 (SLURM's warning before a time limit or preemption)
// make the trainer finish its step, write a checkpoint and exit with kExitPreempted.
#pragma once

#include <stdexcept>

namespace dgqa {

// Installs the handlers; from then on a signal only sets a flag (a second one changes nothing).
void install_stop_handlers();

// Whether this process has received a stop signal.
bool stop_requested();

// How long a collective waits for the other ranks once a stop is requested (Note [Giving up
// after a stop request] in comm/communicator.h): long enough for healthy ranks doing the same
// work, well below SLURM's default KillWait of 30 s.
constexpr double kStopGraceSeconds = 10;

// Thrown by the trainer after the checkpoint of a requested stop; main() exits with
// kExitPreempted.
class StoppedOnRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace dgqa
