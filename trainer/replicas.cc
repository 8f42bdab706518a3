#include "trainer/replicas.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace dgqa {
namespace {

// FNV-1a over raw bytes: any difference in any bit changes it (with overwhelming odds).
uint64_t fnv1a(const void* data, size_t bytes, uint64_t hash) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 1099511628211ULL;
  return hash;
}

}  // namespace

void broadcast_params(VisionTransformer& model, Communicator& comm) {
  if (comm.world_size() == 1) return;
  std::vector<float> params = model.params_to_host();
  comm.broadcast(params.data(), static_cast<int64_t>(params.size() * sizeof(float)), 0,
                 "initial weights broadcast");
  model.params_from_host(params);
}

void verify_replicas(const VisionTransformer& model, Communicator& comm, const char* when) {
  const std::vector<float> params = model.params_to_host();
  uint64_t hash = fnv1a(params.data(), params.size() * sizeof(float), 14695981039346656037ULL);
  for (const GroupAllocator& allocator : model.allocators()) {
    hash = fnv1a(allocator.cache().data(), allocator.cache().size() * sizeof(float), hash);
    hash = fnv1a(allocator.allocation().data(), allocator.allocation().size() * sizeof(int), hash);
  }
  const std::vector<uint64_t> hashes = comm.all_gather(hash, "replica checksum");
  std::string differing;
  for (size_t r = 1; r < hashes.size(); ++r) {
    if (hashes[r] != hashes[0]) differing += " " + std::to_string(r);
  }
  if (!differing.empty()) {
    throw std::runtime_error(std::string("the ranks' weights differ ") + when + ": rank(s)" +
                             differing + " disagree with rank 0");
  }
}

}  // namespace dgqa
