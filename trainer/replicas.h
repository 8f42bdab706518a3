// Keeping the ranks' copies of the model identical.
#pragma once

#include "comm/communicator.h"
#include "model/vit.h"

namespace dgqa {

// Copies rank 0's parameters to every rank.
void broadcast_params(VisionTransformer& model, Communicator& comm);

// Compares checksums of the parameters, and of each layer's DGQA cache and allocation, over all
// ranks; throws std::runtime_error naming what differs (the weights, or the cache or allocation
// of a layer) and on which ranks it differs from rank 0. `when` goes into the message. Collective:
// every rank calls it.
void verify_replicas(const VisionTransformer& model, Communicator& comm, const char* when);

}  // namespace dgqa
