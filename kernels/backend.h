// The device-neutral kernel interface. The model computes only through a Backend; each device
// (kernels/cpu, later kernels/cuda) implements it with functions of the same names. Pointers
// passed to a Backend point to that backend's memory, obtained from allocate().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace dgqa {

// The arithmetic of the matrix products. kBF16 (CUDA only): bf16 operands, fp32 accumulation and
// fp32 results; every other kernel, the parameters, the gradients and the optimizer stay fp32.
enum class Precision { kFP32, kBF16 };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // True when allocate() returns host memory, which a communicator may use as it is.
  virtual bool host_memory() const = 0;
  virtual Precision precision() const { return Precision::kFP32; }
  // The model announces its flat parameter buffer once, after allocating it. A backend that
  // computes in lower precision keeps a working copy of it (the CPU backend needs nothing).
  virtual void set_parameters(const float* /*params*/, int64_t /*count*/) {}
  // Something other than the backend (a collective writing device memory) wrote `bytes` bytes
  // at pointer; a backend with a working copy of the parameters drops what it no longer holds.
  virtual void note_external_write(const void* /*pointer*/, size_t /*bytes*/) {}

  // Memory. allocate() returns zeroed memory; it is released by release().
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* pointer) = 0;
  virtual void zero(void* pointer, size_t bytes) = 0;
  virtual void copy_to_device(void* device, const void* host, size_t bytes) = 0;
  virtual void copy_to_host(void* host, const void* device, size_t bytes) = 0;
  virtual void synchronize() = 0;

  // Kernels: the semantics of each is documented in kernels/cpu/<family>.h.
  virtual void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                              int N, int C, int OC) = 0;
  virtual void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, int N, int C, int OC) = 0;
  virtual void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                 const float* weight, const float* bias, int N, int C,
                                 float eps) = 0;
  virtual void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                  const float* inp, const float* weight, const float* mean,
                                  const float* rstd, int N, int C) = 0;
  virtual void gelu_forward(float* out, const float* inp, int64_t n) = 0;
  virtual void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) = 0;
  virtual void attention_forward(float* out, float* probs, const float* q, const float* k,
                                 const float* v, const int* kv_head, int B, int T, int H, int G,
                                 int d, float scale) = 0;
  virtual void attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                  const float* q, const float* k, const float* v,
                                  const float* probs, const int* kv_head, int B, int T, int H,
                                  int G, int d, float scale) = 0;
  virtual void pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H,
                               int G, int T, int d) = 0;
  virtual void pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise, int B,
                                  int T, int H, int G, int d) = 0;
  virtual void pgqa_noise_backward(float* dx, const float* dy, const float* x, const float* stats,
                                   const float* noise, int B, int T, int H, int G, int d) = 0;
  virtual double softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                               const int* labels, const int* mix_labels,
                                               const float* mix_weights, int N, int K,
                                               float smoothing) = 0;
  virtual void softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* labels,
                                              const int* mix_labels, const float* mix_weights,
                                              int N, int K, float scale, float smoothing) = 0;
  virtual void im2col_patches(float* cols, const float* img, int B, int C, int S, int p) = 0;
  virtual void key_norms(float* norms, const float* k, int B, int T, int G, int d) = 0;
  virtual void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n,
                            float lr, float beta1, float beta2, float eps, float weight_decay,
                            int64_t t) = 0;
  virtual void weight_ema_update(float* ema, const float* params, int64_t n, float weight) = 0;
  virtual void add_inplace(float* x, const float* y, int64_t n) = 0;
  virtual void scale_inplace(float* x, float s, int64_t n) = 0;
  virtual void scale_samples(float* out, const float* in, const float* scales, int B,
                             int64_t n) = 0;
  virtual double sum_squares(const float* x, int64_t n) = 0;
  virtual void tokens_forward(float* x, const float* patches, const float* cls, const float* pos,
                              int B, int N, int D) = 0;
  virtual void tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx, int B,
                               int N, int D) = 0;
  virtual void gather_cls_forward(float* out, const float* x, int B, int T, int D) = 0;
  virtual void gather_cls_backward(float* dx, const float* dout, int B, int T, int D) = 0;
};

struct BackendOptions {
  std::string name = "cpu";  // "cpu", or "cuda" in a CUDA build
  int local_rank = 0;        // CUDA: this process uses GPU local_rank % visible devices
  Precision precision = Precision::kFP32;
};

// Throws InputError for an unknown name, a missing GPU, or bf16 on the CPU.
std::unique_ptr<Backend> make_backend(const BackendOptions& options);
// The named backend on the first GPU, in fp32 (tools and tests).
std::unique_ptr<Backend> make_backend(const std::string& name);

}  // namespace dgqa
