// The CUDA backend's layernorm, gelu, cross-entropy and key_norms kernels against the CPU
// backend on the same random inputs, through the Backend interface only (this program is also
// built without CUDA: every test then skips).
//
// Tolerances: both compute in fp32 but sum in different orders (the CPU sometimes in double), so
// values agree to |cuda - cpu| <= tolerance * (1 + |cpu|) with tolerance
//   kElementwise = 1e-5 where each value depends on few terms (element-wise ops, short rows),
//   kLongReduction = 1e-4 where it depends on a sum of >= 1000 terms (C = 1024, K = 1000, the
//   T * d = 4160 squares of a key head).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "tests/device_array.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::DeviceArray;
using tests::random_vector;

constexpr double kElementwise = 1e-5;
constexpr double kLongReduction = 1e-4;
constexpr float kLayerNormEps = 1e-5f;

// Reports the first few elements outside the tolerance (and how many there are in all).
void expect_close(const std::vector<float>& cuda, const std::vector<float>& cpu, double tolerance,
                  const std::string& what) {
  ASSERT_EQ(cuda.size(), cpu.size()) << what;
  constexpr int kReported = 5;
  int mismatches = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double difference = std::fabs(static_cast<double>(cuda[i]) - cpu[i]);
    if (!(difference <= tolerance * (1 + std::fabs(cpu[i]))) && ++mismatches <= kReported) {
      ADD_FAILURE() << what << "[" << i << "]: cuda " << cuda[i] << ", cpu " << cpu[i];
    }
  }
  EXPECT_EQ(mismatches, 0) << what << ": elements outside the tolerance " << tolerance;
}

void expect_bitwise_equal(const std::vector<float>& first, const std::vector<float>& second,
                          const std::string& what) {
  ASSERT_EQ(first.size(), second.size()) << what;
  for (size_t i = 0; i < first.size(); ++i)
    ASSERT_EQ(first[i], second[i]) << what << "[" << i << "]";
}

// Labels in [0, K), deterministic.
std::vector<int> random_labels(int N, int K, uint32_t seed) {
  const auto uniform = random_vector(N, seed, 0.f, static_cast<float>(K));
  std::vector<int> labels(N);
  for (int n = 0; n < N; ++n) labels[n] = std::min(K - 1, static_cast<int>(uniform[n]));
  return labels;
}

class CudaNormsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      cuda_ = make_backend("cuda");
    } catch (const std::exception& error) {
      GTEST_SKIP() << "no CUDA backend here (CPU-only build or no GPU): " << error.what();
    }
    cpu_ = make_backend("cpu");
  }

  std::unique_ptr<Backend> cpu_, cuda_;
};

// ---- LayerNorm ----

struct LayerNormShape {
  int N, C;
  double tolerance;
};

struct LayerNormInputs {
  std::vector<float> inp, weight, bias;
};

// Rows with their own offset and scale, so that the mean and the variance matter.
LayerNormInputs make_layer_norm_inputs(int N, int C) {
  LayerNormInputs inputs{random_vector(static_cast<size_t>(N) * C, 11, -2.f, 2.f),
                         random_vector(C, 12, 0.5f, 1.5f), random_vector(C, 13)};
  for (int n = 0; n < N; ++n) {
    for (int c = 0; c < C; ++c) {
      float& x = inputs.inp[static_cast<size_t>(n) * C + c];
      x = x * (1 + n % 5) + 3.f;
    }
  }
  return inputs;
}

struct LayerNormForwardResult {
  std::vector<float> out, mean, rstd;
};

LayerNormForwardResult run_layer_norm_forward(Backend& backend, const LayerNormInputs& inputs,
                                              int N, int C) {
  DeviceArray<float> inp(backend, inputs.inp), weight(backend, inputs.weight),
      bias(backend, inputs.bias);
  DeviceArray<float> out(backend, std::vector<float>(inputs.inp.size()));
  DeviceArray<float> mean(backend, std::vector<float>(N)), rstd(backend, std::vector<float>(N));
  backend.layernorm_forward(out.get(), mean.get(), rstd.get(), inp.get(), weight.get(), bias.get(),
                            N, C, kLayerNormEps);
  return {out.to_host(), mean.to_host(), rstd.to_host()};
}

struct LayerNormGradients {
  std::vector<float> dinp, dweight, dbias;
};

// The backward pass onto non-zero initial gradients (it accumulates), from the given saved
// mean and rstd.
LayerNormGradients run_layer_norm_backward(Backend& backend, const LayerNormInputs& inputs,
                                           const LayerNormForwardResult& saved,
                                           const std::vector<float>& dout_values, int N, int C) {
  DeviceArray<float> inp(backend, inputs.inp), weight(backend, inputs.weight);
  DeviceArray<float> mean(backend, saved.mean), rstd(backend, saved.rstd);
  DeviceArray<float> dout(backend, dout_values);
  DeviceArray<float> dinp(backend, random_vector(inputs.inp.size(), 21));
  DeviceArray<float> dweight(backend, random_vector(C, 22)), dbias(backend, random_vector(C, 23));
  backend.layernorm_backward(dinp.get(), dweight.get(), dbias.get(), dout.get(), inp.get(),
                             weight.get(), mean.get(), rstd.get(), N, C);
  return {dinp.to_host(), dweight.to_host(), dbias.to_host()};
}

class CudaLayerNormTest : public CudaNormsTest,
                          public ::testing::WithParamInterface<LayerNormShape> {};

TEST_P(CudaLayerNormTest, ForwardMatchesCpu) {
  const auto [N, C, tolerance] = GetParam();
  const LayerNormInputs inputs = make_layer_norm_inputs(N, C);
  const LayerNormForwardResult expected = run_layer_norm_forward(*cpu_, inputs, N, C);
  const LayerNormForwardResult actual = run_layer_norm_forward(*cuda_, inputs, N, C);
  expect_close(actual.mean, expected.mean, tolerance, "mean");
  expect_close(actual.rstd, expected.rstd, tolerance, "rstd");
  expect_close(actual.out, expected.out, tolerance, "out");
}

TEST_P(CudaLayerNormTest, BackwardAccumulatesLikeCpu) {
  const auto [N, C, tolerance] = GetParam();
  const LayerNormInputs inputs = make_layer_norm_inputs(N, C);
  const LayerNormForwardResult saved = run_layer_norm_forward(*cpu_, inputs, N, C);
  const auto dout = random_vector(inputs.inp.size(), 24);
  const LayerNormGradients expected = run_layer_norm_backward(*cpu_, inputs, saved, dout, N, C);
  const LayerNormGradients actual = run_layer_norm_backward(*cuda_, inputs, saved, dout, N, C);
  expect_close(actual.dinp, expected.dinp, tolerance, "dinp");
  expect_close(actual.dweight, expected.dweight, tolerance, "dweight");
  expect_close(actual.dbias, expected.dbias, tolerance, "dbias");
}

TEST_P(CudaLayerNormTest, BackwardIsBitwiseRepeatable) {
  const auto [N, C, tolerance] = GetParam();
  const LayerNormInputs inputs = make_layer_norm_inputs(N, C);
  const LayerNormForwardResult saved = run_layer_norm_forward(*cuda_, inputs, N, C);
  const auto dout = random_vector(inputs.inp.size(), 25);
  const LayerNormGradients first = run_layer_norm_backward(*cuda_, inputs, saved, dout, N, C);
  const LayerNormGradients second = run_layer_norm_backward(*cuda_, inputs, saved, dout, N, C);
  expect_bitwise_equal(first.dinp, second.dinp, "dinp");
  expect_bitwise_equal(first.dweight, second.dweight, "dweight");
  expect_bitwise_equal(first.dbias, second.dbias, "dbias");
}

// 7 x 5: short rows, a partial warp; 394 x 1024: ViT-sized rows over several row chunks.
INSTANTIATE_TEST_SUITE_P(Shapes, CudaLayerNormTest,
                         ::testing::Values(LayerNormShape{7, 5, kElementwise},
                                           LayerNormShape{394, 1024, kLongReduction}));

// ---- GELU ----

class CudaGeluTest : public CudaNormsTest, public ::testing::WithParamInterface<int64_t> {};

TEST_P(CudaGeluTest, ForwardAndBackwardMatchCpu) {
  const int64_t n = GetParam();
  const auto inp_values = random_vector(n, 31, -6.f, 6.f);
  const auto dout_values = random_vector(n, 32);
  const auto dinp_initial = random_vector(n, 33);
  std::vector<float> out[2], dinp[2];
  Backend* backends[2] = {cpu_.get(), cuda_.get()};
  for (int i = 0; i < 2; ++i) {
    DeviceArray<float> inp(*backends[i], inp_values), dout(*backends[i], dout_values);
    DeviceArray<float> result(*backends[i], std::vector<float>(n));
    DeviceArray<float> gradient(*backends[i], dinp_initial);
    backends[i]->gelu_forward(result.get(), inp.get(), n);
    backends[i]->gelu_backward(gradient.get(), inp.get(), dout.get(), n);
    out[i] = result.to_host();
    dinp[i] = gradient.to_host();
  }
  expect_close(out[1], out[0], kElementwise, "out");
  expect_close(dinp[1], dinp[0], kElementwise, "dinp");
}

// A few elements, a ViT MLP activation, and more elements than the grid has threads (each
// thread then loops).
INSTANTIATE_TEST_SUITE_P(Sizes, CudaGeluTest,
                         ::testing::Values(int64_t{7}, int64_t{394} * 4096,
                                           int64_t{65536} * 256 + 1001));

// ---- Softmax cross-entropy ----

struct CrossEntropyShape {
  int N, K;
  float logit_range;  // logits in [-logit_range, logit_range)
  double tolerance;
};

struct CrossEntropyForwardResult {
  double loss_sum;
  std::vector<float> probs, losses;
};

// Mixed targets (Mixup/CutMix): each row's second label and the first label's weight; empty
// vectors for plain targets.
struct MixedTargets {
  std::vector<int> labels;
  std::vector<float> weights;
};

MixedTargets random_mixed_targets(int N, int K, uint32_t seed) {
  return {random_labels(N, K, seed), random_vector(N, seed + 1, 0.f, 1.f)};
}

CrossEntropyForwardResult run_cross_entropy_forward(Backend& backend,
                                                    const std::vector<float>& logit_values,
                                                    const std::vector<int>& label_values, int N,
                                                    int K, float smoothing = 0.f,
                                                    const MixedTargets& mixed = {}) {
  DeviceArray<float> logits(backend, logit_values);
  DeviceArray<int> labels(backend, label_values);
  const bool mix = !mixed.weights.empty();
  // Unused without mixing, but never empty arrays.
  DeviceArray<int> mix_labels(backend, mix ? mixed.labels : label_values);
  DeviceArray<float> mix_weights(backend, mix ? mixed.weights : std::vector<float>(N));
  DeviceArray<float> probs(backend, std::vector<float>(logit_values.size()));
  DeviceArray<float> losses(backend, std::vector<float>(N));
  const double loss_sum = backend.softmax_cross_entropy_forward(
      probs.get(), losses.get(), logits.get(), labels.get(), mix ? mix_labels.get() : nullptr,
      mix ? mix_weights.get() : nullptr, N, K, smoothing);
  return {loss_sum, probs.to_host(), losses.to_host()};
}

class CudaCrossEntropyTest : public CudaNormsTest,
                             public ::testing::WithParamInterface<CrossEntropyShape> {};

TEST_P(CudaCrossEntropyTest, ForwardMatchesCpu) {
  const auto [N, K, logit_range, tolerance] = GetParam();
  const auto logits = random_vector(static_cast<size_t>(N) * K, 41, -logit_range, logit_range);
  const auto labels = random_labels(N, K, 42);
  for (const MixedTargets& mixed : {MixedTargets{}, random_mixed_targets(N, K, 48)}) {
    for (float smoothing : {0.f, 0.1f}) {
      SCOPED_TRACE("label smoothing " + std::to_string(smoothing) +
                   (mixed.weights.empty() ? "" : ", mixed targets"));
      const CrossEntropyForwardResult expected =
          run_cross_entropy_forward(*cpu_, logits, labels, N, K, smoothing, mixed);
      const CrossEntropyForwardResult actual =
          run_cross_entropy_forward(*cuda_, logits, labels, N, K, smoothing, mixed);
      EXPECT_NEAR(actual.loss_sum, expected.loss_sum,
                  tolerance * (1 + std::fabs(expected.loss_sum)));
      expect_close(actual.losses, expected.losses, tolerance, "losses");
      expect_close(actual.probs, expected.probs, tolerance, "probs");
    }
  }
}

TEST_P(CudaCrossEntropyTest, ForwardSumIsBitwiseRepeatable) {
  const auto [N, K, logit_range, tolerance] = GetParam();
  const auto logits = random_vector(static_cast<size_t>(N) * K, 43, -logit_range, logit_range);
  const auto labels = random_labels(N, K, 44);
  const double first = run_cross_entropy_forward(*cuda_, logits, labels, N, K).loss_sum;
  const double second = run_cross_entropy_forward(*cuda_, logits, labels, N, K).loss_sum;
  EXPECT_EQ(first, second);
}

TEST_P(CudaCrossEntropyTest, BackwardAccumulatesLikeCpu) {
  const auto [N, K, logit_range, tolerance] = GetParam();
  const auto logits = random_vector(static_cast<size_t>(N) * K, 45, -logit_range, logit_range);
  const auto label_values = random_labels(N, K, 46);
  const auto probs_values = run_cross_entropy_forward(*cpu_, logits, label_values, N, K).probs;
  const auto dlogits_initial = random_vector(logits.size(), 47);
  const float scale = 1.f / N;
  for (const MixedTargets& mixed : {MixedTargets{}, random_mixed_targets(N, K, 49)}) {
    for (float smoothing : {0.f, 0.1f}) {
      SCOPED_TRACE("label smoothing " + std::to_string(smoothing) +
                   (mixed.weights.empty() ? "" : ", mixed targets"));
      std::vector<float> dlogits[2];
      Backend* backends[2] = {cpu_.get(), cuda_.get()};
      const bool mix = !mixed.weights.empty();
      for (int i = 0; i < 2; ++i) {
        DeviceArray<float> probs(*backends[i], probs_values),
            gradient(*backends[i], dlogits_initial);
        DeviceArray<int> labels(*backends[i], label_values);
        DeviceArray<int> mix_labels(*backends[i], mix ? mixed.labels : label_values);
        DeviceArray<float> mix_weights(*backends[i], mix ? mixed.weights : std::vector<float>(N));
        backends[i]->softmax_cross_entropy_backward(
            gradient.get(), probs.get(), labels.get(), mix ? mix_labels.get() : nullptr,
            mix ? mix_weights.get() : nullptr, N, K, scale, smoothing);
        dlogits[i] = gradient.to_host();
      }
      expect_close(dlogits[1], dlogits[0], kElementwise, "dlogits");
    }
  }
}

// CIFAR-sized and ImageNet-sized heads; logits up to +-100 check that no exp overflows.
INSTANTIATE_TEST_SUITE_P(Shapes, CudaCrossEntropyTest,
                         ::testing::Values(CrossEntropyShape{3, 10, 5.f, kElementwise},
                                           CrossEntropyShape{256, 1000, 5.f, kLongReduction},
                                           CrossEntropyShape{256, 1000, 100.f, kLongReduction}));

// ---- Key norms ----

TEST_F(CudaNormsTest, KeyNormsMatchCpuAndOverwrite) {
  constexpr int B = 4, T = 65, G = 3, d = 64;
  const auto keys = random_vector(static_cast<size_t>(B) * T * G * d, 51, -2.f, 2.f);
  const std::vector<float> stale_norms(G, 123.f);  // overwritten, not accumulated into
  std::vector<float> norms[2];
  Backend* backends[2] = {cpu_.get(), cuda_.get()};
  for (int i = 0; i < 2; ++i) {
    DeviceArray<float> k(*backends[i], keys), result(*backends[i], stale_norms);
    backends[i]->key_norms(result.get(), k.get(), B, T, G, d);
    norms[i] = result.to_host();
  }
  expect_close(norms[1], norms[0], kLongReduction, "norms");
}

}  // namespace
}  // namespace dgqa
