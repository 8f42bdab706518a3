// The CUDA backend's attention and PGQA noise kernels against the CPU backend's, on the same
// random inputs, through the Backend interface only (so this program also builds without
// CUDA; it then skips). Tolerances, fp32 with different summation orders:
//   - |cuda - cpu| <= 1e-5 * max(1, |cpu|) element-wise for results of short sums (attention
//     probs and out, PGQA y and stats);
//   - 1e-4 * max(1, |cpu|) where sums over T*d enter (attention dq/dk/dv, PGQA dx);
//   - 1e-6 absolute for the standardised noise (both sides sum in double).
#include <gtest/gtest.h>

#include <cmath>
#include <exception>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "tests/device_array.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::DeviceArray;
using tests::random_vector;

constexpr double kForwardTolerance = 1e-5;
constexpr double kSumTolerance = 1e-4;
constexpr double kNoiseTolerance = 1e-6;

// |actual - expected| <= tolerance * max(1, |expected|) for every element.
void expect_close(const std::vector<float>& actual, const std::vector<float>& expected,
                  double tolerance, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int failures = 0;
  for (size_t n = 0; n < actual.size() && failures < 10; ++n) {
    const double bound = tolerance * std::fmax(1.0, std::fabs(expected[n]));
    if (!(std::fabs(static_cast<double>(actual[n]) - expected[n]) <= bound)) {
      ADD_FAILURE() << what << "[" << n << "]: cuda " << actual[n] << ", cpu " << expected[n];
      ++failures;
    }
  }
}

// Both backends; skips the test when there is no CUDA backend (CPU-only build or no GPU).
class CudaVersusCpu {
 protected:
  void make_backends() {
    try {
      cuda_ = make_backend("cuda");
    } catch (const std::exception& error) {
      GTEST_SKIP() << "no CUDA backend: " << error.what();
    }
    cpu_ = make_backend("cpu");
  }
  std::unique_ptr<Backend> cpu_, cuda_;
};

struct AttentionCase {
  std::string name;
  int B, T, H, G, d;
  std::vector<int> kv_head;
  int q_size() const { return B * T * H * d; }
  int kv_size() const { return B * T * G * d; }
  int probs_size() const { return B * H * T * T; }
  float scale() const { return 1.f / std::sqrt(static_cast<float>(d)); }
};

void PrintTo(const AttentionCase& c, std::ostream* os) {
  *os << c.name;
}

struct AttentionInputs {
  std::vector<float> q, k, v, dout, dq, dk, dv;  // dq, dk, dv: non-zero initial gradients
};

AttentionInputs make_attention_inputs(const AttentionCase& c) {
  return {random_vector(c.q_size(), 1, -1.f, 1.f),  random_vector(c.kv_size(), 2, -1.f, 1.f),
          random_vector(c.kv_size(), 3, -1.f, 1.f), random_vector(c.q_size(), 4, -1.f, 1.f),
          random_vector(c.q_size(), 5, -1.f, 1.f),  random_vector(c.kv_size(), 6, -1.f, 1.f),
          random_vector(c.kv_size(), 7, -1.f, 1.f)};
}

struct AttentionResults {
  std::vector<float> out, probs, dq, dk, dv;
};

// Forward, then backward from the saved probs, on one backend.
AttentionResults run_attention(Backend* backend, const AttentionCase& c,
                               const AttentionInputs& in) {
  DeviceArray<int> kv_head(*backend, c.kv_head);
  DeviceArray<float> q(*backend, in.q), k(*backend, in.k), v(*backend, in.v);
  DeviceArray<float> dout(*backend, in.dout), dq(*backend, in.dq), dk(*backend, in.dk),
      dv(*backend, in.dv);
  DeviceArray<float> out(*backend, std::vector<float>(c.q_size()));
  DeviceArray<float> probs(*backend, std::vector<float>(c.probs_size()));
  backend->attention_forward(out.get(), probs.get(), q.get(), k.get(), v.get(), kv_head.get(), c.B,
                             c.T, c.H, c.G, c.d, c.scale());
  backend->attention_backward(dq.get(), dk.get(), dv.get(), dout.get(), q.get(), k.get(), v.get(),
                              probs.get(), kv_head.get(), c.B, c.T, c.H, c.G, c.d, c.scale());
  return {out.to_host(), probs.to_host(), dq.to_host(), dk.to_host(), dv.to_host()};
}

class CudaAttentionTest : public ::testing::TestWithParam<AttentionCase>, public CudaVersusCpu {
 protected:
  void SetUp() override { make_backends(); }
};

TEST_P(CudaAttentionTest, ForwardAndBackwardMatchCpu) {
  const AttentionCase& c = GetParam();
  const AttentionInputs in = make_attention_inputs(c);
  const AttentionResults expected = run_attention(cpu_.get(), c, in);
  const AttentionResults actual = run_attention(cuda_.get(), c, in);
  expect_close(actual.probs, expected.probs, kForwardTolerance, "probs");
  expect_close(actual.out, expected.out, kForwardTolerance, "out");
  expect_close(actual.dq, expected.dq, kSumTolerance, "dq");
  expect_close(actual.dk, expected.dk, kSumTolerance, "dk");
  expect_close(actual.dv, expected.dv, kSumTolerance, "dv");
}

// No atomics: two runs give the same bits.
TEST_P(CudaAttentionTest, IsDeterministic) {
  const AttentionCase& c = GetParam();
  const AttentionInputs in = make_attention_inputs(c);
  const AttentionResults first = run_attention(cuda_.get(), c, in);
  const AttentionResults second = run_attention(cuda_.get(), c, in);
  EXPECT_EQ(first.out, second.out);
  EXPECT_EQ(first.probs, second.probs);
  EXPECT_EQ(first.dq, second.dq);
  EXPECT_EQ(first.dk, second.dk);
  EXPECT_EQ(first.dv, second.dv);
}

// A K/V head no query head uses keeps its initial dk and dv exactly.
TEST_P(CudaAttentionTest, UnusedKeyValueHeadGetsNoGradient) {
  const AttentionCase& c = GetParam();
  const AttentionInputs in = make_attention_inputs(c);
  const AttentionResults actual = run_attention(cuda_.get(), c, in);
  for (int g = 0; g < c.G; ++g) {
    bool used = false;
    for (int h : c.kv_head) used = used || h == g;
    if (used) continue;
    for (int b = 0; b < c.B; ++b) {
      for (int p = 0; p < c.T; ++p) {
        for (int e = 0; e < c.d; ++e) {
          const int n = ((b * c.T + p) * c.G + g) * c.d + e;
          EXPECT_EQ(actual.dk[n], in.dk[n]) << "K/V head " << g << " element " << n;
          EXPECT_EQ(actual.dv[n], in.dv[n]) << "K/V head " << g << " element " << n;
        }
      }
    }
  }
}

std::vector<int> every_head(int H, int heads_per_group) {
  std::vector<int> kv_head(H);
  for (int h = 0; h < H; ++h) kv_head[h] = h / heads_per_group;
  return kv_head;
}

INSTANTIATE_TEST_SUITE_P(
    Maps, CudaAttentionTest,
    ::testing::Values(
        AttentionCase{"SmallMha", 2, 5, 4, 4, 3, {0, 1, 2, 3}},
        AttentionCase{"SmallGqa", 2, 5, 4, 2, 3, {0, 0, 1, 1}},
        AttentionCase{"SmallUneven", 2, 5, 4, 2, 3, {0, 0, 0, 1}},
        AttentionCase{"SmallUnusedHead", 2, 5, 4, 3, 3, {0, 0, 2, 2}},
        AttentionCase{"VitMha", 2, 197, 16, 16, 64, every_head(16, 1)},
        AttentionCase{"VitGqa", 2, 197, 16, 4, 64, every_head(16, 4)},
        AttentionCase{
            "VitUneven", 2, 197, 16, 4, 64, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 3, 3}},
        AttentionCase{
            "VitUnusedHead", 2, 197, 16, 4, 64, {0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3}}),
    [](const ::testing::TestParamInfo<AttentionCase>& case_info) { return case_info.param.name; });

struct NoiseCase {
  std::string name;
  int B, T, H, G, d;
  int x_size() const { return B * T * H * d; }
  int noise_size() const { return H * T * d; }
};

void PrintTo(const NoiseCase& c, std::ostream* os) {
  *os << c.name;
}

class CudaPgqaNoiseTest : public ::testing::TestWithParam<NoiseCase>, public CudaVersusCpu {
 protected:
  void SetUp() override { make_backends(); }
};

std::vector<float> make_noise(Backend* backend, const NoiseCase& c) {
  DeviceArray<float> noise(*backend, std::vector<float>(c.noise_size()));
  backend->pgqa_make_noise(noise.get(), 1234, 56, 7, c.H, c.G, c.T, c.d);
  return noise.to_host();
}

TEST_P(CudaPgqaNoiseTest, NoiseMatchesCpu) {
  const NoiseCase& c = GetParam();
  expect_close(make_noise(cuda_.get(), c), make_noise(cpu_.get(), c), kNoiseTolerance, "noise");
}

struct NoiseResults {
  std::vector<float> y, stats, dx;
};

// Forward and backward from the same noise (the CPU's) on one backend. Head 0 of sample 0 is
// made constant so that a zero std is covered.
NoiseResults run_noise(Backend* backend, const NoiseCase& c, const std::vector<float>& host_noise) {
  std::vector<float> host_x = random_vector(c.x_size(), 11, -2.f, 3.f);
  for (int p = 0; p < c.T; ++p) {
    for (int e = 0; e < c.d; ++e) host_x[p * c.H * c.d + e] = 0.5f;
  }
  DeviceArray<float> noise(*backend, host_noise), x(*backend, host_x);
  DeviceArray<float> dy(*backend, random_vector(c.x_size(), 12));
  DeviceArray<float> dx(*backend, random_vector(c.x_size(), 13));
  DeviceArray<float> y(*backend, std::vector<float>(c.x_size()));
  DeviceArray<float> stats(*backend, std::vector<float>(c.B * c.H * 2));
  backend->pgqa_noise_forward(y.get(), stats.get(), x.get(), noise.get(), c.B, c.T, c.H, c.G, c.d);
  backend->pgqa_noise_backward(dx.get(), dy.get(), x.get(), stats.get(), noise.get(), c.B, c.T, c.H,
                               c.G, c.d);
  return {y.to_host(), stats.to_host(), dx.to_host()};
}

TEST_P(CudaPgqaNoiseTest, ForwardAndBackwardMatchCpu) {
  const NoiseCase& c = GetParam();
  const std::vector<float> noise = make_noise(cpu_.get(), c);
  const NoiseResults expected = run_noise(cpu_.get(), c, noise);
  const NoiseResults actual = run_noise(cuda_.get(), c, noise);
  EXPECT_EQ(expected.stats[1], 0.f) << "the constant row should have std 0";
  expect_close(actual.stats, expected.stats, kForwardTolerance, "stats");
  expect_close(actual.y, expected.y, kForwardTolerance, "y");
  expect_close(actual.dx, expected.dx, kSumTolerance, "dx");
}

// y may be x itself.
TEST_P(CudaPgqaNoiseTest, ForwardInPlace) {
  const NoiseCase& c = GetParam();
  const auto host_x = random_vector(c.x_size(), 21, -2.f, 3.f);
  DeviceArray<float> noise(*cuda_, make_noise(cuda_.get(), c));
  DeviceArray<float> x(*cuda_, host_x), in_place(*cuda_, host_x);
  DeviceArray<float> y(*cuda_, std::vector<float>(c.x_size()));
  DeviceArray<float> stats(*cuda_, std::vector<float>(c.B * c.H * 2));
  cuda_->pgqa_noise_forward(y.get(), stats.get(), x.get(), noise.get(), c.B, c.T, c.H, c.G, c.d);
  cuda_->pgqa_noise_forward(in_place.get(), stats.get(), in_place.get(), noise.get(), c.B, c.T, c.H,
                            c.G, c.d);
  EXPECT_EQ(in_place.to_host(), y.to_host());
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaPgqaNoiseTest,
                         ::testing::Values(NoiseCase{"Small", 2, 5, 4, 2, 3},
                                           NoiseCase{"OneHeadPerGroup", 2, 5, 4, 4, 3},
                                           NoiseCase{"OneGroup", 2, 5, 4, 1, 3},
                                           NoiseCase{"Vit", 2, 197, 16, 4, 64}),
                         [](const ::testing::TestParamInfo<NoiseCase>& case_info) {
                           return case_info.param.name;
                         });

}  // namespace
}  // namespace dgqa
