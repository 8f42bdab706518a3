// Errors shared by every part of dgqa.
#pragma once

#include <stdexcept>
#include <string>

namespace dgqa {

// Bad input from the user: a config field, a data file, a weights file, a CLI argument.
// The message names the thing at fault. The CLI turns it into exit code 2 before any work.
class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& message) : std::runtime_error(message) {}
};

// Exit codes of the `dgqa` program.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;     // an internal or runtime failure
constexpr int kExitInputError = 2;  // an InputError: bad config, data, weights or arguments
// dgqa inspect: what it was given is damaged (a checksum fails, a file is missing), and said so.
constexpr int kExitDamaged = 1;
// Asked to stop (SIGTERM, SIGUSR1: preemption, a time limit): a checkpoint was written and the
// run can continue with --resume auto. 75 is EX_TEMPFAIL, "try again later".
constexpr int kExitPreempted = 75;

}  // namespace dgqa
