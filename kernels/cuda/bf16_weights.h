// The bf16 operands of the CUDA backend's BF16 mode (kernels/cuda/kernels.h says what the mode
// does): the bf16 working copy ("mirror") of the fp32 parameters, and scratch buffers into which
// activations and stray weights are cast right before a matrix product. One CudaBackend in BF16
// mode owns one Bf16State; everything runs on the context's one stream, in call order.
//
// The mirror's rule: it is either exact (every element is the bf16 rounding of the fp32 parameter
// now) or stale, and a stale mirror is re-cast in full before a product reads it.
//  - set_parameters() registers the fp32 range [params, params + count) and starts stale.
//  - adamw_update() over a part of the range updates the fp32 parameters and writes their bf16
//    rounding into the mirror in the same kernel (adamw.cu), so the mirror stays exact: this is the
//    one write of the parameters in a training step, and it costs no extra pass.
//  - Any other write into the range (copy_to_device, zero, scale_inplace, add_inplace: a restore,
//    a broadcast, an import, a test) makes the mirror stale, and so does an adamw_update over a
//    stale mirror (it writes no bf16 then: the whole mirror is re-cast before its next use anyway)
//    or over a span that only partly overlaps the range.
//  - Kernels compute activations and gradients and never write the parameters, so they are not
//    watched. A new way of writing the parameters must call note_write(); memory written behind
//    the backend's back (a collective writing device memory directly) is not seen unless the
//    writer says so (Backend::note_external_write).
// A product's weight inside the range is read at mirror + offset; one outside it (or straddling
// its edge) is cast into scratch for that product.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>

namespace dgqa::cuda {

// Device memory for n bf16 values, grown on demand and then reused, so that steady-state steps
// never allocate. Growing waits for the stream first: queued kernels may still read the old buffer.
class Bf16Scratch {
 public:
  Bf16Scratch() = default;
  ~Bf16Scratch();
  Bf16Scratch(const Bf16Scratch&) = delete;
  Bf16Scratch& operator=(const Bf16Scratch&) = delete;

  // At least n elements, contents undefined.
  __nv_bfloat16* get(int64_t n);

 private:
  __nv_bfloat16* data_ = nullptr;
  int64_t capacity_ = 0;
};

class Bf16Weights {
 public:
  Bf16Weights() = default;
  ~Bf16Weights();
  Bf16Weights(const Bf16Weights&) = delete;
  Bf16Weights& operator=(const Bf16Weights&) = delete;

  // Registers the fp32 parameters [params, params + count) (replacing any earlier range) and
  // allocates their mirror, stale. A null params or count 0 registers nothing.
  void set_parameters(const float* params, int64_t count);
  // The backend is releasing the allocation at pointer: if it holds the parameters, forget them.
  void released(const void* pointer);
  // bytes at pointer are about to be written by something other than the fused AdamW.
  void note_write(const void* pointer, size_t bytes);
  // AdamW is about to update params[0, n): the bf16 array that its kernel must write the rounded
  // results to (the mirror at the matching offset), or null when it must write none.
  __nv_bfloat16* adamw_target(const float* params, int64_t n);
  // The bf16 copy of weight[0, count) for a product, enqueued on the stream: the mirror at the
  // matching offset (re-cast in full first when stale), or a cast into scratch.
  const __nv_bfloat16* weight(const float* weight, int64_t count);

 private:
  bool contains(const void* pointer, size_t bytes) const;  // wholly inside the range
  bool overlaps(const void* pointer, size_t bytes) const;  // shares at least one byte with it
  void free_mirror();

  const float* params_ = nullptr;
  int64_t count_ = 0;
  __nv_bfloat16* mirror_ = nullptr;  // count_ elements
  bool stale_ = true;
  Bf16Scratch scratch_;  // weights outside the range
};

// What a CudaBackend in BF16 mode owns.
struct Bf16State {
  Bf16Weights weights;
  Bf16Scratch inp;   // the products' activation operand (matmul inp)
  Bf16Scratch dout;  // the backward products' output gradient operand
};

}  // namespace dgqa::cuda
