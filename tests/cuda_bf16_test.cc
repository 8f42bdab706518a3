// CudaBackend in BF16 mode (kernels/cuda/kernels.h): matrix products with bf16 operands, fp32
// accumulation and fp32 results through cuBLASLt, the bias epilogue, accumulating backward
// products, the bf16 copy of the parameters (kernels/cuda/bf16_weights.h), and the whole model
// against the CPU's fp32. Needs a GPU: without one, or in a build without -DDGQA_CUDA=ON, every
// test skips and says why.
//
// References. The CPU backend computes in fp32; fed operands already rounded to bf16
// (round_to_bf16, kernels/cuda/bf16.h, the device cast's rounding on the host), it computes the
// same products the GPU does, because the GPU's cast then leaves them unchanged and a product of
// two bf16 values (8 significant bits each) is exact in fp32. What remains is fp32 accumulation in
// other orders (tensor-core blocking, split-K): at most a few K * 2^-24 of the sum of the
// magnitudes of the terms, so every element is held to
//     |gpu - cpu| <= 1e-3 * (sum of |terms|) + 1e-6
// with the sum of |terms| computed by the CPU backend on the absolute values of the operands
// (and of the starting gradient, and the bias). 1e-3 leaves room for K = 4096 and for tensor
// cores whose internal fp32 adds need not round to nearest. Small integers make every sum exact,
// in any order: those tests expect the CPU's bits exactly.
#include "kernels/backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/bf16.h"
#include "model/vit.h"
#include "tests/bf16_emulation.h"
#include "tests/device_array.h"
#include "tests/test_util.h"

#ifdef DGQA_WITH_CUDA
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/kernels.h"
#endif

namespace dgqa {
namespace {

using tests::DeviceArray;
using tests::random_vector;

constexpr double kRel = 1e-3, kAbs = 1e-6;  // of the sum of |terms| (the header says why)

// The BF16 CUDA backend, or null with the reason there is none.
std::unique_ptr<Backend> make_bf16_backend(std::string* why_not) {
#ifndef DGQA_WITH_CUDA
  *why_not = "no GPU: built without -DDGQA_CUDA=ON";
  return nullptr;
#else
  if (cuda::device_count() == 0) {
    *why_not = "no GPU: no CUDA device is visible";
    return nullptr;
  }
  BackendOptions options;
  options.name = "cuda";
  options.precision = Precision::kBF16;
  return make_backend(options);
#endif
}

// The BF16 products so far that cuBLASLt offered no algorithm for (they went through
// cublasGemmEx: right, but without the fused bias and the heuristic's choice).
int64_t fallback_count() {
#ifdef DGQA_WITH_CUDA
  return cuda::matmul_bf16_fallbacks();
#else
  return 0;
#endif
}

// Shapes whose leading dimensions are multiples of 8 elements (16-byte rows of bf16), in
// 256-byte-aligned buffers: cuBLASLt must have an algorithm for every product of these.
bool lt_friendly(int C, int OC) {
  return C % 8 == 0 && OC % 8 == 0;
}

// Uniform in [-scale, scale).
std::vector<float> uniform_values(size_t n, uint32_t seed, float scale = 1.f) {
  return random_vector(n, seed, -scale, scale);
}

std::vector<float> rounded_to_bf16(std::vector<float> values) {
  for (float& x : values) x = round_to_bf16(x);
  return values;
}

std::vector<float> absolute_values(std::vector<float> values) {
  for (float& x : values) x = std::fabs(x);
  return values;
}

// Integers in [-4, 4]: exact in bf16, and every sum of their products below is exact in fp32.
std::vector<float> small_integers(size_t n, uint32_t seed) {
  std::vector<float> values = random_vector(n, seed, -4.49f, 4.49f);
  for (float& x : values) x = std::round(x);
  return values;
}

using tests::Op;
using tests::run_on_backend;

// Expects |actual - expected| <= kRel * magnitude + kAbs element-wise; reports the count of
// elements out of tolerance and the worst of them.
void expect_within_magnitude(const std::vector<float>& actual, const std::vector<float>& expected,
                             const std::vector<float>& magnitude, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  ASSERT_EQ(magnitude.size(), expected.size()) << what;
  size_t failures = 0, worst = 0;
  double worst_excess = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double error = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    const double excess = error / (kRel * magnitude[i] + kAbs);
    if (!(excess <= 1.0)) {  // also catches NaN
      ++failures;
      if (!(excess <= worst_excess)) worst_excess = excess, worst = i;
    }
  }
  EXPECT_EQ(failures, 0u) << what << ": " << failures << " of " << actual.size()
                          << " elements out of tolerance; worst [" << worst << "]: bf16 "
                          << actual[worst] << " vs cpu " << expected[worst] << " (sum of |terms| "
                          << magnitude[worst] << ")";
}

class CudaBf16Test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why_not;
    bf16_ = make_bf16_backend(&why_not);
    if (bf16_ == nullptr) GTEST_SKIP() << why_not;
    cpu_ = make_backend("cpu");
  }

  // op on the CPU (the reference), on the BF16 backend, and on the CPU again with the absolute
  // values of every buffer (the sum of |terms| of each output); expects every buffer within
  // tolerance. Inputs must already be rounded to bf16 where the GPU rounds them.
  void expect_matches_cpu(const std::vector<std::vector<float>>& host, const Op& op,
                          const std::string& what) {
    const auto expected = run_on_backend(*cpu_, host, op);
    const auto actual = run_on_backend(*bf16_, host, op);
    std::vector<std::vector<float>> absolute;
    for (const auto& vector : host) absolute.push_back(absolute_values(vector));
    const auto magnitude = run_on_backend(*cpu_, absolute, op);
    for (size_t i = 0; i < host.size(); ++i) {
      expect_within_magnitude(actual[i], expected[i], magnitude[i],
                              what + ", buffer " + std::to_string(i));
    }
  }

  // Expects the BF16 backend to give the CPU's results bit for bit.
  void expect_same_bits(const std::vector<std::vector<float>>& host, const Op& op,
                        const std::string& what) {
    const auto expected = run_on_backend(*cpu_, host, op);
    const auto actual = run_on_backend(*bf16_, host, op);
    for (size_t i = 0; i < host.size(); ++i) {
      EXPECT_EQ(actual[i], expected[i]) << what << ", buffer " << i;
    }
  }

  std::unique_ptr<Backend> cpu_, bf16_;
};

struct MatmulShape {
  int N, C, OC;
};
// A tiny odd shape (cuBLASLt may have no algorithm for its alignments: the cublasGemmEx
// fallback), a medium one, and ViT-L's fc1 at two images of 197 tokens.
const MatmulShape kShapes[] = {{7, 5, 3}, {128, 384, 1152}, {394, 1024, 4096}};

std::string describe(const MatmulShape& shape) {
  return "(N, C, OC) = (" + std::to_string(shape.N) + ", " + std::to_string(shape.C) + ", " +
         std::to_string(shape.OC) + ")";
}

TEST_F(CudaBf16Test, ReportsItsPrecision) {
  EXPECT_EQ(bf16_->name(), "cuda");
  EXPECT_EQ(bf16_->precision(), Precision::kBF16);
  EXPECT_FALSE(bf16_->host_memory());
}

// out = inp weight^T + bias, the bias through cuBLASLt's BIAS epilogue: bias is fp32 and added in
// fp32 (not rounded); out starts with garbage and must be overwritten.
TEST_F(CudaBf16Test, MatmulForwardMatchesCpuOnBf16Operands) {
  for (const MatmulShape& s : kShapes) {
    for (const bool with_bias : {true, false}) {
      const std::vector<std::vector<float>> host = {
          uniform_values(static_cast<size_t>(s.N) * s.OC, 10),                  // out: overwritten
          rounded_to_bf16(uniform_values(static_cast<size_t>(s.N) * s.C, 11)),  // inp
          rounded_to_bf16(uniform_values(static_cast<size_t>(s.OC) * s.C, 12,   // weight
                                         1.f / std::sqrt(static_cast<float>(s.C)))),
          uniform_values(s.OC, 13)};  // bias
      const int64_t fallbacks = fallback_count();
      expect_matches_cpu(
          host,
          [&](Backend& backend, const std::vector<float*>& b) {
            backend.matmul_forward(b[0], b[1], b[2], with_bias ? b[3] : nullptr, s.N, s.C, s.OC);
          },
          describe(s) + (with_bias ? " with bias" : " without bias"));
      if (lt_friendly(s.C, s.OC)) {
        EXPECT_EQ(fallback_count(), fallbacks) << describe(s) << ": cuBLASLt offered no algorithm";
      }
    }
  }
}

// The gradients start non-zero: every product must add to them (beta = 1), dbias too.
TEST_F(CudaBf16Test, MatmulBackwardAccumulatesAndMatchesCpu) {
  for (const MatmulShape& s : kShapes) {
    for (const bool with_dinp : {true, false}) {
      for (const bool with_dbias : {true, false}) {
        const std::vector<std::vector<float>> host = {
            uniform_values(static_cast<size_t>(s.N) * s.C, 20),   // dinp
            uniform_values(static_cast<size_t>(s.OC) * s.C, 21),  // dweight
            uniform_values(s.OC, 22),                             // dbias
            rounded_to_bf16(uniform_values(static_cast<size_t>(s.N) * s.OC, 23,
                                           1.f / std::sqrt(static_cast<float>(s.OC)))),  // dout
            rounded_to_bf16(uniform_values(static_cast<size_t>(s.N) * s.C, 24)),         // inp
            rounded_to_bf16(uniform_values(static_cast<size_t>(s.OC) * s.C, 25,
                                           1.f / std::sqrt(static_cast<float>(s.C))))};  // weight
        const int64_t fallbacks = fallback_count();
        expect_matches_cpu(
            host,
            [&](Backend& backend, const std::vector<float*>& b) {
              backend.matmul_backward(with_dinp ? b[0] : nullptr, b[1], with_dbias ? b[2] : nullptr,
                                      b[3], b[4], b[5], s.N, s.C, s.OC);
            },
            describe(s) + (with_dinp ? " with dinp" : " without dinp") +
                (with_dbias ? " with dbias" : " without dbias"));
        if (lt_friendly(s.C, s.OC)) {
          EXPECT_EQ(fallback_count(), fallbacks)
              << describe(s) << ": cuBLASLt offered no algorithm";
        }
      }
    }
  }
}

// On small integers every sum is exact in any order, so layouts, transposes, the bias epilogue
// and the accumulation into non-zero gradients must give the CPU's bits exactly.
TEST_F(CudaBf16Test, ExactOnSmallIntegers) {
  for (const MatmulShape& s :
       {MatmulShape{7, 5, 3}, MatmulShape{37, 24, 40}, MatmulShape{394, 1024, 4096}}) {
    const size_t NC = static_cast<size_t>(s.N) * s.C, NO = static_cast<size_t>(s.N) * s.OC;
    const size_t OCC = static_cast<size_t>(s.OC) * s.C;
    expect_same_bits(
        {small_integers(NO, 30), small_integers(NC, 31), small_integers(OCC, 32),
         small_integers(s.OC, 33)},
        [&](Backend& backend, const std::vector<float*>& b) {
          backend.matmul_forward(b[0], b[1], b[2], b[3], s.N, s.C, s.OC);
        },
        describe(s) + " forward");
    expect_same_bits(
        {small_integers(NC, 34), small_integers(OCC, 35), small_integers(s.OC, 36),
         small_integers(NO, 37), small_integers(NC, 38), small_integers(OCC, 39)},
        [&](Backend& backend, const std::vector<float*>& b) {
          // Twice: the second call must add to what the first one left.
          for (int i = 0; i < 2; ++i) {
            backend.matmul_backward(b[0], b[1], b[2], b[3], b[4], b[5], s.N, s.C, s.OC);
          }
        },
        describe(s) + " backward, twice");
  }
}

// The operands really are rounded: 1 + 2^-10 and 1 + 2^-9 are both nearer 1 than the next bf16,
// 1 + 2^-7, so every product is 1 * 1 (fp32 would give 64.19 and 3.006 below). dbias alone
// sums the fp32 dout (matmul.cu says why), exactly 3 * (1 + 2^-10) here.
TEST_F(CudaBf16Test, OperandsAreRoundedToBf16) {
  const int N = 3, C = 64, OC = 2;
  const float a = 1.f + std::ldexp(1.f, -10), w = 1.f + std::ldexp(1.f, -9);
  const auto results = run_on_backend(
      *bf16_,
      {std::vector<float>(N * OC, 0.f), std::vector<float>(N * C, a), std::vector<float>(OC * C, w),
       std::vector<float>(N * C, 0.f), std::vector<float>(OC * C, 0.f), std::vector<float>(OC, 0.f),
       std::vector<float>(N * OC, a)},
      [&](Backend& backend, const std::vector<float*>& b) {
        backend.matmul_forward(b[0], b[1], b[2], nullptr, N, C, OC);
        backend.matmul_backward(b[3], b[4], b[5], b[6], b[1], b[2], N, C, OC);
      });
  EXPECT_EQ(results[0], std::vector<float>(N * OC, static_cast<float>(C))) << "out";
  EXPECT_EQ(results[3], std::vector<float>(N * C, static_cast<float>(OC))) << "dinp";
  EXPECT_EQ(results[4], std::vector<float>(OC * C, static_cast<float>(N))) << "dweight";
  EXPECT_EQ(results[5], std::vector<float>(OC, 3.f * a)) << "dbias, from the fp32 dout";
}

// --- The bf16 copy of the parameters

// A registered parameter buffer of the BF16 backend, and a way to see the weights a product
// reads: with inp the (C, C) identity, out[n, o] = weight[o, n] exactly (one non-zero term).
class CudaBf16WeightsTest : public CudaBf16Test {
 protected:
  static constexpr int64_t kCount = 4096;
  // Two weights of (kOC, kC) inside the parameters: one at a 16-float boundary, as the model's
  // tensors are, and one at an odd offset (a 2-byte-aligned bf16 copy, a 4-byte-aligned fp32).
  static constexpr int kOC = 8, kC = 16;
  static constexpr int64_t kAligned = 48, kOdd = 1001;

  void SetUp() override {
    CudaBf16Test::SetUp();
    if (IsSkipped()) return;
    params_ = static_cast<float*>(bf16_->allocate(sizeof(float) * kCount));
    bf16_->set_parameters(params_, kCount);
    std::vector<float> identity(kC * kC, 0.f);
    for (int i = 0; i < kC; ++i) identity[i * kC + i] = 1.f;
    identity_ = std::make_unique<DeviceArray<float>>(*bf16_, identity);
    out_ = std::make_unique<DeviceArray<float>>(*bf16_, std::vector<float>(kC * kOC, 0.f));
  }
  void TearDown() override {
    identity_.reset();
    out_.reset();
    if (params_ != nullptr) bf16_->release(params_);
  }

  std::vector<float> params_to_host() {
    std::vector<float> host(kCount);
    bf16_->copy_to_host(host.data(), params_, sizeof(float) * kCount);
    return host;
  }

  // The (kOC, kC) weight at params + offset as a product reads it.
  std::vector<float> weight_as_product_sees(int64_t offset) {
    bf16_->matmul_forward(out_->get(), identity_->get(), params_ + offset, nullptr, kC, kC, kOC);
    const std::vector<float> out = out_->to_host();  // (kC, kOC): the weight transposed
    std::vector<float> weight(kOC * kC);
    for (int o = 0; o < kOC; ++o) {
      for (int c = 0; c < kC; ++c) weight[o * kC + c] = out[c * kOC + o];
    }
    return weight;
  }

  // Expects both weights, as products read them, to be the bf16 rounding of the fp32 parameters
  // the backend holds now.
  void expect_mirror_current(const std::string& after) {
    const std::vector<float> params = params_to_host();
    for (const int64_t offset : {kAligned, kOdd}) {
      std::vector<float> expected(params.begin() + offset, params.begin() + offset + kOC * kC);
      EXPECT_EQ(weight_as_product_sees(offset), rounded_to_bf16(expected))
          << "after " << after << ", the weight at offset " << offset;
    }
  }

  float* params_ = nullptr;
  std::unique_ptr<DeviceArray<float>> identity_, out_;
};

TEST_F(CudaBf16WeightsTest, ProductsSeeEveryWriteToTheParameters) {
  const std::vector<float> first = uniform_values(kCount, 40);
  bf16_->copy_to_device(params_, first.data(), sizeof(float) * kCount);
  expect_mirror_current("copy_to_device of every parameter");
  expect_mirror_current("nothing (read twice)");

  const std::vector<float> part = uniform_values(kOC * kC, 41, 3.f);
  bf16_->copy_to_device(params_ + kAligned + 5, part.data(), sizeof(float) * part.size());
  expect_mirror_current("copy_to_device of a part");

  bf16_->scale_inplace(params_, 0.37f, kCount);
  expect_mirror_current("scale_inplace");

  const DeviceArray<float> addend(*bf16_, uniform_values(kCount, 42));
  bf16_->add_inplace(params_ + kOdd - 7, addend.get(), 50);
  expect_mirror_current("add_inplace");

  bf16_->zero(params_ + kAligned + 3, sizeof(float) * 20);
  expect_mirror_current("zero");

  bf16_->zero(params_, sizeof(float) * kCount);
  expect_mirror_current("zero of every parameter");
}

// AdamW updates the fp32 parameters exactly as without the mirror (the CPU's, to 1e-6) and
// leaves the mirror equal to their rounding: over the whole range, over parts of it (the
// optimizer's per-tensor calls), and over a stale mirror (after a copy_to_device).
TEST_F(CudaBf16WeightsTest, AdamwKeepsTheMirrorCurrent) {
  const std::vector<float> initial = uniform_values(kCount, 50);
  bf16_->copy_to_device(params_, initial.data(), sizeof(float) * kCount);
  DeviceArray<float> grads(*bf16_, uniform_values(kCount, 51));
  DeviceArray<float> m(*bf16_, std::vector<float>(kCount, 0.f));
  DeviceArray<float> v(*bf16_, std::vector<float>(kCount, 0.f));
  expect_mirror_current("the initial copy");  // current before each AdamW below but the last

  int64_t t = 0;
  auto step = [&](int64_t begin, int64_t end) {
    bf16_->adamw_update(params_ + begin, grads.get() + begin, m.get() + begin, v.get() + begin,
                        end - begin, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, t);
  };
  t = 1;
  step(0, kCount);
  expect_mirror_current("AdamW over every parameter");

  t = 2;  // per-tensor calls, as the optimizer makes them; one span boundary cuts the odd weight
  for (const auto& span : {std::pair<int64_t, int64_t>{0, kAligned},
                           {kAligned, kAligned + kOC * kC},
                           {kAligned + kOC * kC, kOdd + 3},
                           {kOdd + 3, kCount}}) {
    step(span.first, span.second);
  }
  expect_mirror_current("AdamW span by span");

  const std::vector<float> replaced = uniform_values(kCount, 52);
  bf16_->copy_to_device(params_, replaced.data(), sizeof(float) * kCount);
  const std::vector<float> m_before = m.to_host(), v_before = v.to_host();
  t = 3;
  step(0, kCount);
  expect_mirror_current("AdamW over a stale mirror");

  // The fp32 update itself is the CPU's (to the element-wise tolerance of cuda_backend_test).
  const std::vector<float> expected = run_on_backend(
      *cpu_, {replaced, grads.to_host(), m_before, v_before},
      [&](Backend& backend, const std::vector<float*>& b) {
        backend.adamw_update(b[0], b[1], b[2], b[3], kCount, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, 3);
      })[0];
  const std::vector<float> actual = params_to_host();
  for (int64_t i = 0; i < kCount; ++i) {
    ASSERT_NEAR(actual[i], expected[i], 1e-6 + 1e-6 * std::fabs(expected[i])) << "parameter " << i;
  }
}

// --- The whole model

const AttentionScheme kSchemes[] = {AttentionScheme::kMHA,      AttentionScheme::kGQA,
                                    AttentionScheme::kKDGQA,    AttentionScheme::kDGQA_DIFF,
                                    AttentionScheme::kDGQA_EMA, AttentionScheme::kPGQA};

class CudaBf16ModelTest : public CudaBf16Test,
                          public ::testing::WithParamInterface<AttentionScheme> {};

// The BF16 model against the CPU's fp32 one, same weights and images, within kBf16VersusFp32
// (tests/bf16_emulation.h): loose enough for bf16's rounding in every product, far below what a
// wrong layout, a lost bias or a lost accumulation does (errors of the order of the values
// themselves). The CPU emulation of these products (bf16_emulation_test) uses at most 0.3 of
// that tolerance for every scheme, also when its fp32 additions are made in other orders; the
// allocation (KDGQA, DGQA) must be the same, as it is in the emulation.
TEST_P(CudaBf16ModelTest, ForwardAndBackwardNearTheCpuFp32) {
  const AttentionScheme scheme = GetParam();
  const tests::ModelRun fp32 = tests::run_small_test_model(*cpu_, scheme);
  const tests::ModelRun bf16 = tests::run_small_test_model(*bf16_, scheme);
  const VisionTransformer layout_source(tests::small_test_model(scheme), *cpu_, 1, 3);
  const tests::ToleranceUse use =
      tests::compare_runs(bf16, fp32, tests::kBf16VersusFp32, layout_source.layout());
  EXPECT_LE(use.worst, 1.0) << "the worst error, at " << use.where << ", is " << use.worst
                            << " of its tolerance";
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, CudaBf16ModelTest, ::testing::ValuesIn(kSchemes),
                         [](const auto& test_param) {
                           return std::string(attention_scheme_name(test_param.param));
                         });

}  // namespace
}  // namespace dgqa
