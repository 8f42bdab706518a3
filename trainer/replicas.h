// Keeping the ranks' copies of the model identical.
#pragma once

#include "comm/communicator.h"
#include "model/vit.h"

namespace dgqa {

// Copies rank 0's parameters to every rank.
void broadcast_params(VisionTransformer& model, Communicator& comm);

// Compares a checksum of the parameters and DGQA state over all ranks; throws
// std::runtime_error naming the ranks that differ from rank 0. `when` goes into the message.
void verify_replicas(const VisionTransformer& model, Communicator& comm, const char* when);

}  // namespace dgqa
