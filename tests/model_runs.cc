#include "tests/model_runs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/reducer.h"
#include "tests/test_util.h"

namespace dgqa::tests {

ModelConfig small_test_model(AttentionScheme scheme, float drop_path_rate) {
  ModelConfig c;
  c.image_size = 32;
  c.patch_size = 8;
  c.in_channels = 3;
  c.num_classes = 10;
  c.embed_dim = 64;
  c.depth = 2;
  c.num_heads = 4;
  c.num_kv_heads = scheme == AttentionScheme::kMHA ? 4 : 2;
  c.attention = scheme;
  c.dgqa_window = 1;
  c.init_std = 0.1f;
  c.drop_path_rate = drop_path_rate;
  return c;
}

ModelRun run_small_test_model(Backend& backend, AttentionScheme scheme, float drop_path_rate,
                              bool recompute, bool mixed_targets) {
  const ModelConfig config = small_test_model(scheme, drop_path_rate);
  const int B = 4;
  VisionTransformer model(config, backend, B, 3, recompute);
  const std::vector<float> images = random_vector(
      static_cast<size_t>(B) * config.in_channels * config.image_size * config.image_size, 5);
  const std::vector<int32_t> labels = {1, 7, 3, 9};
  const std::vector<int32_t> mix_labels = {9, 3, 7, 1};
  const std::vector<float> mix_weights = {0.7f, 0.4f, 0.6f, 0.3f};
  ForwardContext context{true, 0};
  if (mixed_targets) {
    context.label_smoothing = 0.1f;
    context.mix_labels = mix_labels.data();
    context.mix_weights = mix_weights.data();
  }
  LocalReducer reducer;
  model.zero_grads();
  ModelRun run;
  run.initial_params = model.params_to_host();
  run.loss = model.forward(images.data(), labels.data(), B, context, reducer);
  run.logits = model.logits_to_host();
  for (const GroupAllocator& allocator : model.allocators()) {
    run.allocations.push_back(allocator.active_allocation());
  }
  model.backward(1.f / B);
  run.grads.resize(model.layout().total_size());
  backend.copy_to_host(run.grads.data(), model.grads(), run.grads.size() * sizeof(float));
  return run;
}

namespace {

// Keeps the largest error / tolerance seen and where it was.
class WorstRatio {
 public:
  void add(double error, double tolerance, const std::string& where) {
    double ratio = error / tolerance;
    if (std::isnan(ratio)) ratio = std::numeric_limits<double>::infinity();
    if (ratio > use_.worst || use_.where.empty()) use_ = {ratio, where};
  }
  ToleranceUse result() const { return use_; }

 private:
  ToleranceUse use_;
};

}  // namespace

ToleranceUse compare_runs(const ModelRun& actual, const ModelRun& expected,
                          const RunTolerance& tolerance, const ParamLayout& layout) {
  WorstRatio worst;
  if (actual.initial_params != expected.initial_params) {
    worst.add(std::numeric_limits<double>::infinity(), 1.0, "the initial parameters differ");
    return worst.result();
  }
  if (actual.allocations != expected.allocations) {
    worst.add(std::numeric_limits<double>::infinity(), 1.0, "the allocations differ");
    return worst.result();
  }
  worst.add(std::fabs(actual.loss - expected.loss), tolerance.loss_rel * std::fabs(expected.loss),
            "loss");

  double largest_logit = 0;
  for (const float x : expected.logits)
    largest_logit = std::max<double>(largest_logit, std::fabs(x));
  if (actual.logits.size() != expected.logits.size()) {
    worst.add(std::numeric_limits<double>::infinity(), 1.0, "the logits' sizes differ");
    return worst.result();
  }
  for (size_t i = 0; i < expected.logits.size(); ++i) {
    worst.add(std::fabs(static_cast<double>(actual.logits[i]) - expected.logits[i]),
              tolerance.logit_rel * largest_logit + tolerance.logit_abs,
              "logit " + std::to_string(i));
  }

  if (actual.grads.size() != expected.grads.size()) {
    worst.add(std::numeric_limits<double>::infinity(), 1.0, "the gradients' sizes differ");
    return worst.result();
  }
  for (const TensorSlot& slot : layout.tensors()) {
    double largest = 0, norm2 = 0, error2 = 0;
    for (int64_t i = 0; i < slot.size; ++i) {
      const double reference = expected.grads[slot.offset + i];
      const double error = actual.grads[slot.offset + i] - reference;
      largest = std::max(largest, std::fabs(reference));
      norm2 += reference * reference;
      error2 += error * error;
    }
    worst.add(std::sqrt(error2),
              tolerance.grad_norm_rel * std::sqrt(norm2) +
                  tolerance.grad_norm_abs * std::sqrt(static_cast<double>(slot.size)),
              slot.name + ": the L2 norm of the error");
    for (int64_t i = 0; i < slot.size; ++i) {
      worst.add(std::fabs(static_cast<double>(actual.grads[slot.offset + i]) -
                          expected.grads[slot.offset + i]),
                tolerance.grad_elem_rel * largest + tolerance.grad_elem_abs,
                slot.name + "[" + std::to_string(i) + "]");
    }
  }
  return worst.result();
}

}  // namespace dgqa::tests
