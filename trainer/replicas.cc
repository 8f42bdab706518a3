#include "trainer/replicas.h"

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace dgqa {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ULL;

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

namespace {

// The ranks whose `hash` differs from rank 0's, as " 1 3", or "" when every rank agrees.
std::string ranks_differing(Communicator& comm, uint64_t hash) {
  const std::vector<uint64_t> hashes = comm.all_gather(hash, "replica checksum");
  std::string differing;
  for (size_t r = 1; r < hashes.size(); ++r) {
    if (hashes[r] != hashes[0]) differing += " " + std::to_string(r);
  }
  return differing;
}

template <typename T>
uint64_t hash_of(const std::vector<T>& values) {
  return fnv1a(values.data(), values.size() * sizeof(T), kFnvOffset);
}

}  // namespace

void verify_replicas(const VisionTransformer& model, Communicator& comm, const char* when) {
  std::vector<std::string> problems;
  const std::string params = ranks_differing(comm, hash_of(model.params_to_host()));
  if (!params.empty()) problems.push_back("the weights of rank(s)" + params);
  const std::vector<GroupAllocator>& allocators = model.allocators();
  for (size_t layer = 0; layer < allocators.size(); ++layer) {
    const std::string cache = ranks_differing(comm, hash_of(allocators[layer].cache()));
    const std::string allocation = ranks_differing(comm, hash_of(allocators[layer].allocation()));
    const std::string where = " of layer " + std::to_string(layer) + " on rank(s)";
    if (!cache.empty()) problems.push_back("the DGQA cache" + where + cache);
    if (!allocation.empty()) problems.push_back("the allocation" + where + allocation);
  }
  if (problems.empty()) return;
  std::string list;
  for (const std::string& problem : problems) list += (list.empty() ? "" : "; ") + problem;
  throw std::runtime_error(std::string("the ranks' replicas differ ") + when + ": " + list +
                           " disagree with rank 0's");
}

}  // namespace dgqa
