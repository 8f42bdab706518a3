// The CPU emulation of the CUDA backend's BF16 products (tests/bf16_emulation.h), and what it
// says about the tolerances of the GPU's BF16 model test (tests/cuda_bf16_test.cc), which could
// only be estimated without a GPU:
//   - bf16 products move the model's loss, logits and gradients away from fp32 by well under the
//     tolerance the GPU test grants for that (kBf16VersusFp32), for every scheme, and leave the
//     allocation as it is;
//   - so do bf16 products whose fp32 additions are made in other orders, as the GPU's are
//     (stood in for by a jitter of each product's results).
// Plain C++: it runs in every build.
#include "tests/bf16_emulation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "tests/device_array.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::Bf16ProductsCpuBackend;
using tests::ModelRun;
using tests::run_small_test_model;
using tests::ToleranceUse;

// The same numbers as CudaBf16Test.OperandsAreRoundedToBf16 expects of the GPU: 1 + 2^-10 and
// 1 + 2^-9 round to 1 in bf16, so every product is a sum of 1 * 1; dbias sums the fp32 dout.
TEST(Bf16EmulationTest, OperandsAreRoundedAndDbiasIsFp32) {
  const int N = 3, C = 64, OC = 2;
  const float a = 1.f + std::ldexp(1.f, -10), w = 1.f + std::ldexp(1.f, -9);
  Bf16ProductsCpuBackend backend;
  EXPECT_EQ(backend.precision(), Precision::kBF16);
  const auto results = tests::run_on_backend(
      backend,
      {std::vector<float>(N * OC, 0.f), std::vector<float>(N * C, a), std::vector<float>(OC * C, w),
       std::vector<float>(N * C, 0.5f), std::vector<float>(OC * C, 0.25f),
       std::vector<float>(OC, 2.f), std::vector<float>(N * OC, a)},
      [&](Backend& be, const std::vector<float*>& b) {
        be.matmul_forward(b[0], b[1], b[2], nullptr, N, C, OC);
        be.matmul_backward(b[3], b[4], b[5], b[6], b[1], b[2], N, C, OC);
      });
  EXPECT_EQ(results[0], std::vector<float>(N * OC, static_cast<float>(C))) << "out";
  // The gradients start non-zero: each adds to what was there.
  EXPECT_EQ(results[3], std::vector<float>(N * C, 0.5f + OC)) << "dinp";
  EXPECT_EQ(results[4], std::vector<float>(OC * C, 0.25f + N)) << "dweight";
  EXPECT_EQ(results[5], std::vector<float>(OC, 2.f + 3.f * a)) << "dbias";
}

// With a bias, the emulation adds it in fp32: a bias of 1 + 2^-10 survives (bf16 would drop the
// 2^-10).
TEST(Bf16EmulationTest, BiasIsAddedInFp32) {
  const int N = 2, C = 8, OC = 3;
  const float bias = 1.f + std::ldexp(1.f, -10);
  Bf16ProductsCpuBackend backend;
  const auto results =
      tests::run_on_backend(backend,
                            {std::vector<float>(N * OC, 0.f), std::vector<float>(N * C, 1.f),
                             std::vector<float>(OC * C, 1.f), std::vector<float>(OC, bias)},
                            [&](Backend& be, const std::vector<float*>& b) {
                              be.matmul_forward(b[0], b[1], b[2], b[3], N, C, OC);
                            });
  EXPECT_EQ(results[0], std::vector<float>(N * OC, C + bias));
}

// The jitter changes results by at most its relative size, and not at all when it is 0.
TEST(Bf16EmulationTest, JitterIsBoundedAndOffByDefault) {
  const int N = 16, C = 32, OC = 24;
  const std::vector<float> inp = tests::random_vector(N * C, 1);
  const std::vector<float> weight = tests::random_vector(OC * C, 2);
  const float jitter = 1e-3f;
  auto forward = [&](float with_jitter) {
    Bf16ProductsCpuBackend backend(with_jitter);
    return tests::run_on_backend(backend, {std::vector<float>(N * OC, 0.f), inp, weight},
                                 [&](Backend& be, const std::vector<float*>& b) {
                                   be.matmul_forward(b[0], b[1], b[2], nullptr, N, C, OC);
                                 })[0];
  };
  const std::vector<float> plain = forward(0.f), jittered = forward(jitter);
  EXPECT_EQ(forward(0.f), plain);
  int changed = 0;
  for (int i = 0; i < N * OC; ++i) {
    EXPECT_LE(std::fabs(jittered[i] - plain[i]), 1.01f * jitter * std::fabs(plain[i])) << i;
    changed += jittered[i] != plain[i];
  }
  EXPECT_GT(changed, N * OC / 2);
}

const AttentionScheme kSchemes[] = {AttentionScheme::kMHA,      AttentionScheme::kGQA,
                                    AttentionScheme::kKDGQA,    AttentionScheme::kDGQA_DIFF,
                                    AttentionScheme::kDGQA_EMA, AttentionScheme::kPGQA};

class Bf16EmulationModelTest : public ::testing::TestWithParam<AttentionScheme> {};

// Prints how much of a tolerance a comparison used, for the record.
void report(const std::string& what, const ToleranceUse& use) {
  std::cout << attention_scheme_name(::testing::TestWithParam<AttentionScheme>::GetParam()) << ": "
            << what << " uses " << use.worst << " of its tolerance (at " << use.where << ")\n";
}

TEST_P(Bf16EmulationModelTest, Bf16ProductsStayWellWithinTheGpuTestsTolerance) {
  const AttentionScheme scheme = GetParam();
  auto cpu = make_backend("cpu");
  Bf16ProductsCpuBackend emulation;
  const ModelRun fp32 = run_small_test_model(*cpu, scheme);
  const ModelRun bf16 = run_small_test_model(emulation, scheme);
  EXPECT_NE(bf16.loss, fp32.loss) << "the emulation computed in fp32";
  const VisionTransformer layout_source(tests::small_test_model(scheme), *cpu, 1, 3);
  const ToleranceUse use = compare_runs(bf16, fp32, tests::kBf16VersusFp32, layout_source.layout());
  report("bf16 products against fp32", use);
  // Half the tolerance at most: the other half is for what the GPU does otherwise.
  EXPECT_LE(use.worst, 0.5) << use.where;
}

// The GPU adds in other orders than the CPU: the jittered emulation stands in for it, at the size
// of a few fp32 roundings (2^-22), of K * 2^-24 for the largest K here (2^-16), and far beyond.
TEST_P(Bf16EmulationModelTest, OtherAdditionOrdersStayWellWithinTheGpuTestsTolerance) {
  const AttentionScheme scheme = GetParam();
  auto cpu = make_backend("cpu");
  const VisionTransformer layout_source(tests::small_test_model(scheme), *cpu, 1, 3);
  const ModelRun fp32 = run_small_test_model(*cpu, scheme);
  Bf16ProductsCpuBackend emulation;
  const double plain_loss = run_small_test_model(emulation, scheme).loss;
  for (const float jitter : {0x1p-22f, 0x1p-16f, 0x1p-12f}) {
    Bf16ProductsCpuBackend jittered(jitter);
    const ModelRun run = run_small_test_model(jittered, scheme);
    EXPECT_NE(run.loss, plain_loss) << "a jitter of " << jitter << " changed nothing";
    const ToleranceUse use =
        compare_runs(run, fp32, tests::kBf16VersusFp32, layout_source.layout());
    report("bf16 products with a jitter of " + ::testing::PrintToString(jitter) + " against fp32",
           use);
    EXPECT_LE(use.worst, 0.5) << "a jitter of " << jitter << ": " << use.where;
  }
}

// The tolerance still catches a wrong product: an emulation that overwrites dinp instead of
// adding to it (the q, k and v products share it), or that loses dbias, is far outside it.
enum class Fault { kDinpOverwritten, kDbiasLost };

class FaultyBf16Products : public Bf16ProductsCpuBackend {
 public:
  explicit FaultyBf16Products(Fault fault) : fault_(fault) {}
  void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, int N, int C, int OC) override {
    if (fault_ == Fault::kDinpOverwritten && dinp != nullptr) {
      zero(dinp, sizeof(float) * N * C);
    }
    Bf16ProductsCpuBackend::matmul_backward(
        dinp, dweight, fault_ == Fault::kDbiasLost ? nullptr : dbias, dout, inp, weight, N, C, OC);
  }

 private:
  Fault fault_;
};

TEST_P(Bf16EmulationModelTest, TheToleranceCatchesWrongProducts) {
  const AttentionScheme scheme = GetParam();
  auto cpu = make_backend("cpu");
  const VisionTransformer layout_source(tests::small_test_model(scheme), *cpu, 1, 3);
  const ModelRun fp32 = run_small_test_model(*cpu, scheme);
  for (const Fault fault : {Fault::kDinpOverwritten, Fault::kDbiasLost}) {
    FaultyBf16Products faulty(fault);
    const ToleranceUse use = compare_runs(run_small_test_model(faulty, scheme), fp32,
                                          tests::kBf16VersusFp32, layout_source.layout());
    const std::string what = fault == Fault::kDinpOverwritten ? "dinp overwritten" : "dbias lost";
    report(what, use);
    EXPECT_GT(use.worst, 2.0) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, Bf16EmulationModelTest, ::testing::ValuesIn(kSchemes),
                         [](const auto& test_param) {
                           return std::string(attention_scheme_name(test_param.param));
                         });

}  // namespace
}  // namespace dgqa
