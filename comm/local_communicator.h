// The Communicator of a job with one rank: collectives are no-ops and MPI is never touched.
#pragma once

#include <memory>

#include "comm/communicator.h"

namespace dgqa {

std::unique_ptr<Communicator> make_local_communicator(const RankInfo& info);

}  // namespace dgqa
