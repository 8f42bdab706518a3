// A Backend that runs another one and times every kernel call: `dgqa bench --profile` prints
// where a step's time goes. Each call is followed by a synchronize, so on a device backend a
// kernel is charged its own time (and the overlap between kernels is lost: profile, then
// measure the speed without it).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/stopwatch.h"
#include "kernels/backend.h"

namespace dgqa {

class ProfilingBackend : public Backend {
 public:
  explicit ProfilingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  struct Entry {
    int64_t calls = 0;
    double seconds = 0;
  };
  // Seconds and calls per kernel; matrix products are told apart by their shape.
  const std::map<std::string, Entry>& entries() const { return entries_; }
  void reset() { entries_.clear(); }

  std::string name() const override { return inner_->name(); }
  bool host_memory() const override { return inner_->host_memory(); }
  Precision precision() const override { return inner_->precision(); }
  void set_parameters(const float* params, int64_t count) override {
    inner_->set_parameters(params, count);
  }
  void* allocate(size_t bytes) override { return inner_->allocate(bytes); }
  void release(void* pointer) override { inner_->release(pointer); }
  void zero(void* pointer, size_t bytes) override;
  void copy_to_device(void* device, const void* host, size_t bytes) override;
  void copy_to_host(void* host, const void* device, size_t bytes) override;
  void synchronize() override { inner_->synchronize(); }

  void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                      int C, int OC) override;
  void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, int N, int C, int OC) override;
  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                         const float* weight, const float* bias, int N, int C, float eps) override;
  void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const float* weight, const float* mean,
                          const float* rstd, int N, int C) override;
  void gelu_forward(float* out, const float* inp, int64_t n) override;
  void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) override;
  void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                         const int* kv_head, int B, int T, int H, int G, int d,
                         float scale) override;
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                          const float* k, const float* v, const float* probs, const int* kv_head,
                          int B, int T, int H, int G, int d, float scale) override;
  void pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H, int G,
                       int T, int d) override;
  void pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise, int B, int T,
                          int H, int G, int d) override;
  void pgqa_noise_backward(float* dx, const float* dy, const float* x, const float* stats,
                           const float* noise, int B, int T, int H, int G, int d) override;
  double softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                       const int* labels, const int* mix_labels,
                                       const float* mix_weights, int N, int K,
                                       float smoothing) override;
  void softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* labels,
                                      const int* mix_labels, const float* mix_weights, int N, int K,
                                      float scale, float smoothing) override;
  void im2col_patches(float* cols, const float* img, int B, int C, int S, int p) override;
  void key_norms(float* norms, const float* k, int B, int T, int G, int d) override;
  void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, int64_t t) override;
  void weight_ema_update(float* ema, const float* params, int64_t n, float weight) override;
  void add_inplace(float* x, const float* y, int64_t n) override;
  void scale_inplace(float* x, float s, int64_t n) override;
  void scale_samples(float* out, const float* in, const float* scales, int B, int64_t n) override;
  double sum_squares(const float* x, int64_t n) override;
  void tokens_forward(float* x, const float* patches, const float* cls, const float* pos, int B,
                      int N, int D) override;
  void tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx, int B, int N,
                       int D) override;
  void gather_cls_forward(float* out, const float* x, int B, int T, int D) override;
  void gather_cls_backward(float* dx, const float* dout, int B, int T, int D) override;

 private:
  // Runs call(), synchronizes, and charges the time to `kernel`.
  template <typename Call>
  auto timed(const std::string& kernel, const Call& call) {
    struct Charge {  // charges on the way out, also for calls that return a value
      Charge(ProfilingBackend& profiler, const std::string& name) : self(profiler), kernel(name) {}
      ~Charge() {
        self.inner_->synchronize();
        Entry& entry = self.entries_[kernel];
        ++entry.calls;
        entry.seconds += started.seconds();
      }
      ProfilingBackend& self;
      const std::string& kernel;
      const Stopwatch started;
    } charge(*this, kernel);
    return call();
  }

  std::unique_ptr<Backend> inner_;
  std::map<std::string, Entry> entries_;
};

}  // namespace dgqa
