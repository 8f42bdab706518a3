// The bf16 mirror of the parameters and the bf16 scratch buffers (the rules: bf16_weights.h), and
// the fp32 -> bf16 cast kernel.
#include "kernels/cuda/bf16_weights.h"

#include <cstdint>

#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"

namespace dgqa::cuda {

namespace {

constexpr int kThreads = 256;

// out[i] = x[i] rounded to the nearest bf16, ties to even (round_to_bf16 in bf16.h is the same
// rounding on the host). One thread per element, grid-stride.
__global__ void cast_to_bf16_kernel(__nv_bfloat16* out, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = __float2bfloat16_rn(x[i]);
  }
}

// Frees device memory from a destructor: waits for the stream (queued kernels may still use it)
// and never throws; an error there (e.g. the driver shutting down) leaves nothing to clean up.
void free_quietly(void* pointer) {
  if (pointer == nullptr) return;
  cudaStreamSynchronize(context().stream);
  cudaFree(pointer);
  cudaGetLastError();  // clears the error these may have left, so later checks do not report it
}

}  // namespace

void cast_to_bf16(__nv_bfloat16* out, const float* x, int64_t n) {
  if (n == 0) return;
  cast_to_bf16_kernel<<<grid_stride_blocks(n, kThreads), kThreads, 0, context().stream>>>(out, x,
                                                                                          n);
  DGQA_CUDA_CHECK_LAUNCH();
}

// --- Bf16Scratch

Bf16Scratch::~Bf16Scratch() {
  free_quietly(data_);
}

__nv_bfloat16* Bf16Scratch::get(int64_t n) {
  if (n > capacity_) {
    DGQA_CUDA_CHECK(cudaStreamSynchronize(context().stream));  // no queued kernel reads it now
    DGQA_CUDA_CHECK(cudaFree(data_));
    data_ = nullptr;
    capacity_ = 0;
    DGQA_CUDA_CHECK(cudaMalloc(&data_, sizeof(__nv_bfloat16) * n));
    capacity_ = n;
  }
  return data_;
}

// --- Bf16Weights

Bf16Weights::~Bf16Weights() {
  free_quietly(mirror_);
}

void Bf16Weights::free_mirror() {
  if (mirror_ != nullptr) {
    DGQA_CUDA_CHECK(cudaStreamSynchronize(context().stream));  // no queued product reads it now
    DGQA_CUDA_CHECK(cudaFree(mirror_));
  }
  mirror_ = nullptr;
  params_ = nullptr;
  count_ = 0;
  stale_ = true;
}

void Bf16Weights::set_parameters(const float* params, int64_t count) {
  free_mirror();
  if (params == nullptr || count <= 0) return;
  DGQA_CUDA_CHECK(cudaMalloc(&mirror_, sizeof(__nv_bfloat16) * count));
  params_ = params;
  count_ = count;
  stale_ = true;  // whatever the parameters hold, the mirror does not hold it yet
}

void Bf16Weights::released(const void* pointer) {
  if (pointer != nullptr && pointer == params_) free_mirror();
}

bool Bf16Weights::contains(const void* pointer, size_t bytes) const {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(params_);
  const uintptr_t end = begin + sizeof(float) * static_cast<uintptr_t>(count_);
  const uintptr_t p = reinterpret_cast<uintptr_t>(pointer);
  return count_ > 0 && p >= begin && p <= end && bytes <= end - p;
}

bool Bf16Weights::overlaps(const void* pointer, size_t bytes) const {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(params_);
  const uintptr_t end = begin + sizeof(float) * static_cast<uintptr_t>(count_);
  const uintptr_t p = reinterpret_cast<uintptr_t>(pointer);
  return count_ > 0 && bytes > 0 && p < end && p + bytes > begin;
}

void Bf16Weights::note_write(const void* pointer, size_t bytes) {
  if (overlaps(pointer, bytes)) stale_ = true;
}

__nv_bfloat16* Bf16Weights::adamw_target(const float* params, int64_t n) {
  const size_t bytes = sizeof(float) * static_cast<size_t>(n);
  if (!overlaps(params, bytes)) return nullptr;  // not the parameters: nothing to mirror
  // A stale mirror is re-cast in full before its next use, so writing part of it is wasted; a
  // span that only partly overlaps the range would leave the rest of its overlap unmirrored.
  if (stale_ || !contains(params, bytes)) {
    stale_ = true;
    return nullptr;
  }
  return mirror_ + (params - params_);  // the mirror stays exact: AdamW writes both
}

const __nv_bfloat16* Bf16Weights::weight(const float* weight, int64_t count) {
  const size_t bytes = sizeof(float) * static_cast<size_t>(count);
  if (!contains(weight, bytes)) {
    __nv_bfloat16* cast = scratch_.get(count);
    cast_to_bf16(cast, weight, count);
    return cast;
  }
  if (stale_) {
    cast_to_bf16(mirror_, params_, count_);
    stale_ = false;
  }
  return mirror_ + (weight - params_);
}

}  // namespace dgqa::cuda
