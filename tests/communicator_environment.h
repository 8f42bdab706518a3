// One communicator for the whole test program (include this header in one file of a program):
// MPI is initialised once, before the first test, and finalised after the last. Programs that
// CTest also runs under mpirun (comm_mpi_test, gradient_sync_test) get their ranks through it.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "comm/communicator.h"

namespace dgqa::tests {

// Long enough for 4 oversubscribed ranks on a loaded machine; a hang still ends the job.
inline constexpr double kCommunicatorTimeoutS = 60;

class CommunicatorEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { communicator = make_communicator(kCommunicatorTimeoutS); }
  void TearDown() override { communicator.reset(); }

  std::unique_ptr<Communicator> communicator;
};

inline CommunicatorEnvironment* const communicator_environment =
    static_cast<CommunicatorEnvironment*>(
        ::testing::AddGlobalTestEnvironment(new CommunicatorEnvironment));

// The program's communicator (between the environment's SetUp and TearDown).
inline Communicator& comm() {
  return *communicator_environment->communicator;
}

}  // namespace dgqa::tests
