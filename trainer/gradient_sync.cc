#include "trainer/gradient_sync.h"

#include <algorithm>
#include <stdexcept>

#include "comm/staged_all_reduce.h"
#include "common/stopwatch.h"
#include "trainer/zero_shards.h"
#ifdef DGQA_WITH_CUDA
#include "comm/cuda/nccl_all_reduce.h"
#endif

namespace dgqa {

GradientSyncOptions gradient_sync_options(const config::Config& config, int world_size) {
  GradientSyncOptions options;
  const bool cuda = config.train().backend() == "cuda";
  // NCCL launches one kernel per bucket: on a GPU, buckets of 25 MiB unless the config says.
  options.bucket_mb = cuda && !config.dist().has_bucket_mb() ? 25 : config.dist().bucket_mb();
  // One rank has nothing to sum: NCCL runs then only when asked for by name (a check of it).
  const config::DistBackend backend = config.dist().backend();
  options.nccl = backend == config::NCCL ||
                 (backend == config::DIST_BACKEND_DEFAULT && cuda && world_size > 1);
  options.timeout_s = config.dist().timeout_s();
  options.zero = config.dist().zero_stage() == 1;
  return options;
}

std::unique_ptr<BufferAllReduce> make_nccl_sum(Communicator& comm, double timeout_s) {
#ifdef DGQA_WITH_CUDA
  return make_nccl_all_reduce(comm, timeout_s);
#else
  throw std::logic_error("NCCL in a build without CUDA");
#endif
}

GradientSync::GradientSync(Communicator& comm, Backend& backend, float* grads, int64_t size,
                           const GradientSyncOptions& options)
    : backend_(backend),
      grads_(grads),
      size_(size),
      zero_(options.zero),
      shard_bounds_(zero_shard_bounds(size, options.zero ? comm.world_size() : 1)) {
  if (options.nccl) {
    all_reduce_ = make_nccl_sum(comm, options.timeout_s);
    method_ = "NCCL";
    nccl_ = true;
  } else if (comm.world_size() > 1 && backend.host_memory()) {
    all_reduce_ = std::make_unique<HostAllReduce>(comm);
    method_ = "MPI";
  } else if (comm.world_size() > 1) {
    all_reduce_ = std::make_unique<StagedAllReduce>(comm, backend, grads, size);
    method_ = "MPI through host memory";
  }
  const int64_t bucket =
      std::max<int64_t>(1, static_cast<int64_t>(options.bucket_mb * (1 << 20) / 4));
  // Each bucket starts at a multiple of 64 floats (256 bytes), where NCCL and MPI copy fastest;
  // the last one started (the first of the buffer) takes what is left.
  constexpr int64_t kAlignment = 64;
  for (int64_t end = size; end > 0;) {
    const int64_t begin = std::max<int64_t>(0, end - bucket) / kAlignment * kAlignment;
    bucket_begin_.push_back(begin);
    end = begin;
  }
}

void GradientSync::ready(int64_t first_ready) {
  if (all_reduce_ == nullptr || (!overlap_ && first_ready > 0)) return;
  for (auto& pending : pending_) all_reduce_->test(*pending);  // progress the buckets in flight
  while (started_ < num_buckets() && bucket_begin_[started_] >= first_ready) {
    start_bucket(bucket_begin_[started_], started_ == 0 ? size_ : bucket_begin_[started_ - 1]);
    ++started_;
  }
}

void GradientSync::start_bucket(int64_t begin, int64_t end) {
  if (!zero_) {
    pending_.push_back(all_reduce_->start(grads_ + begin, end - begin, "gradient all-reduce"));
    return;
  }
  const int ranks = static_cast<int>(shard_bounds_.size()) - 1;
  for (int owner = 0; owner < ranks; ++owner) {
    const ShardPiece piece = shard_piece(shard_bounds_, owner, begin, end);
    if (piece.empty()) continue;
    pending_.push_back(all_reduce_->start_reduce(grads_ + piece.first, piece.last - piece.first,
                                                 owner, "gradient reduce"));
  }
}

void GradientSync::gather_parameters(float* params) {
  if (!zero_ || all_reduce_ == nullptr) return;
  all_reduce_->all_gather_ranges(params, shard_bounds_, "parameter all-gather");
  backend_.note_external_write(params, size_ * sizeof(float));
}

double GradientSync::finish() {
  if (all_reduce_ == nullptr) return 0;
  ready(0);
  const Stopwatch waiting;
  for (auto& pending : pending_) all_reduce_->wait(*pending);
  pending_.clear();
  started_ = 0;
  return waiting.seconds();
}

}  // namespace dgqa
