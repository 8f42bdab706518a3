// attention_forward / attention_backward for several query-head -> K/V-head maps, against a
// plain double-precision loop and finite differences.
#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "tests/gradient_check.h"
#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

using tests::expect_accumulated;
using tests::numerical_gradient;
using tests::random_vector;
using tests::to_double;
using tests::weighted_sum;

struct AttentionCase {
  std::string name;
  int B, T, H, G, d;
  std::vector<int> kv_head;
  int q_size() const { return B * T * H * d; }
  int kv_size() const { return B * T * G * d; }
  float scale() const { return 1.f / std::sqrt(static_cast<float>(d)); }
};

void PrintTo(const AttentionCase& c, std::ostream* os) {
  *os << c.name;
}

struct Reference {
  std::vector<double> out, probs;
};

Reference reference_attention(const AttentionCase& c, const std::vector<double>& q,
                              const std::vector<double>& k, const std::vector<double>& v) {
  const int B = c.B, T = c.T, H = c.H, G = c.G, d = c.d;
  Reference r{std::vector<double>(c.q_size()),
              std::vector<double>(static_cast<size_t>(B) * H * T * T)};
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < H; ++h) {
      const int g = c.kv_head[h];
      for (int i = 0; i < T; ++i) {
        std::vector<double> scores(T);
        for (int j = 0; j < T; ++j) {
          double dot = 0.0;
          for (int e = 0; e < d; ++e) {
            dot += q[(b * T + i) * H * d + h * d + e] * k[(b * T + j) * G * d + g * d + e];
          }
          scores[j] = c.scale() * dot;
        }
        const double max_score = *std::max_element(scores.begin(), scores.end());
        double sum = 0.0;
        for (int j = 0; j < T; ++j) sum += std::exp(scores[j] - max_score);
        for (int j = 0; j < T; ++j) {
          const double prob = std::exp(scores[j] - max_score) / sum;
          r.probs[((b * H + h) * T + i) * T + j] = prob;
          for (int e = 0; e < d; ++e) {
            r.out[(b * T + i) * H * d + h * d + e] += prob * v[(b * T + j) * G * d + g * d + e];
          }
        }
      }
    }
  }
  return r;
}

class AttentionTest : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionTest, ForwardMatchesReference) {
  const AttentionCase& c = GetParam();
  const auto q = random_vector(c.q_size(), 1, -2.f, 2.f);
  const auto k = random_vector(c.kv_size(), 2, -2.f, 2.f);
  const auto v = random_vector(c.kv_size(), 3);
  std::vector<float> out(c.q_size(), 7.f), probs(static_cast<size_t>(c.B) * c.H * c.T * c.T, 7.f);
  attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), c.kv_head.data(), c.B,
                    c.T, c.H, c.G, c.d, c.scale());
  const Reference expected = reference_attention(c, to_double(q), to_double(k), to_double(v));
  for (size_t i = 0; i < probs.size(); ++i) EXPECT_NEAR(probs[i], expected.probs[i], 1e-6) << i;
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_NEAR(out[i], expected.out[i], 1e-5 * (1 + std::fabs(expected.out[i]))) << i;
  }
}

TEST_P(AttentionTest, BackwardAccumulatesFiniteDifferenceGradients) {
  const AttentionCase& c = GetParam();
  const auto q = random_vector(c.q_size(), 4, -2.f, 2.f);
  const auto k = random_vector(c.kv_size(), 5, -2.f, 2.f);
  const auto v = random_vector(c.kv_size(), 6);
  const auto loss_weights = random_vector(c.q_size(), 7);  // loss = sum(out * loss_weights)
  std::vector<float> out(c.q_size()), probs(static_cast<size_t>(c.B) * c.H * c.T * c.T);
  attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), c.kv_head.data(), c.B,
                    c.T, c.H, c.G, c.d, c.scale());
  const auto dq_initial = random_vector(c.q_size(), 8);
  const auto dk_initial = random_vector(c.kv_size(), 9);
  const auto dv_initial = random_vector(c.kv_size(), 10);
  auto dq = dq_initial, dk = dk_initial, dv = dv_initial;
  std::vector<float> scratch(attention_backward_scratch_size(c.T));
  attention_backward(dq.data(), dk.data(), dv.data(), loss_weights.data(), q.data(), k.data(),
                     v.data(), probs.data(), c.kv_head.data(), c.B, c.T, c.H, c.G, c.d, c.scale(),
                     scratch.data());

  const auto q_d = to_double(q), k_d = to_double(k), v_d = to_double(v);
  auto loss = [&](const std::vector<double>& q_, const std::vector<double>& k_,
                  const std::vector<double>& v_) {
    return weighted_sum(reference_attention(c, q_, k_, v_).out, loss_weights);
  };
  expect_accumulated(dq, dq_initial,
                     numerical_gradient([&](const auto& x) { return loss(x, k_d, v_d); }, q_d),
                     "dq");
  expect_accumulated(dk, dk_initial,
                     numerical_gradient([&](const auto& x) { return loss(q_d, x, v_d); }, k_d),
                     "dk");
  expect_accumulated(dv, dv_initial,
                     numerical_gradient([&](const auto& x) { return loss(q_d, k_d, x); }, v_d),
                     "dv");
}

// A K/V head that no query head uses gets exactly no gradient; the others do.
TEST_P(AttentionTest, UnusedKvHeadsGetNoGradient) {
  const AttentionCase& c = GetParam();
  const auto q = random_vector(c.q_size(), 11);
  const auto k = random_vector(c.kv_size(), 12);
  const auto v = random_vector(c.kv_size(), 13);
  const auto dout = random_vector(c.q_size(), 14);
  std::vector<float> out(c.q_size()), probs(static_cast<size_t>(c.B) * c.H * c.T * c.T);
  attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), c.kv_head.data(), c.B,
                    c.T, c.H, c.G, c.d, c.scale());
  std::vector<float> dq(c.q_size(), 0.f), dk(c.kv_size(), 0.f), dv(c.kv_size(), 0.f);
  std::vector<float> scratch(attention_backward_scratch_size(c.T));
  attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(),
                     probs.data(), c.kv_head.data(), c.B, c.T, c.H, c.G, c.d, c.scale(),
                     scratch.data());
  for (int g = 0; g < c.G; ++g) {
    const bool used = std::count(c.kv_head.begin(), c.kv_head.end(), g) > 0;
    double dk_norm = 0.0, dv_norm = 0.0;
    for (int row = 0; row < c.B * c.T; ++row) {
      for (int e = 0; e < c.d; ++e) {
        dk_norm += std::fabs(dk[(row * c.G + g) * c.d + e]);
        dv_norm += std::fabs(dv[(row * c.G + g) * c.d + e]);
      }
    }
    if (used) {
      // With one token the softmax is constant: no gradient reaches the keys.
      if (c.T > 1) {
        EXPECT_GT(dk_norm, 0.0) << "K/V head " << g;
      }
      EXPECT_GT(dv_norm, 0.0) << "K/V head " << g;
    } else {
      EXPECT_EQ(dk_norm, 0.0) << "K/V head " << g;
      EXPECT_EQ(dv_norm, 0.0) << "K/V head " << g;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(KvHeadMaps, AttentionTest,
                         ::testing::Values(AttentionCase{"MHA", 2, 5, 4, 4, 3, {0, 1, 2, 3}},
                                           AttentionCase{"GQA", 2, 5, 4, 2, 3, {0, 0, 1, 1}},
                                           AttentionCase{"Uneven", 2, 5, 4, 2, 3, {0, 0, 0, 1}},
                                           AttentionCase{
                                               "UnusedKvHead", 2, 5, 4, 3, 3, {0, 0, 2, 2}},
                                           AttentionCase{"Interleaved", 1, 7, 3, 2, 2, {1, 0, 1}},
                                           AttentionCase{"SingleToken", 3, 1, 2, 1, 4, {0, 0}}),
                         [](const auto& test_case) { return test_case.param.name; });

// Sizes of a real ViT layer (65 tokens, head dim 64), forward only: finite differences would
// take too long.
TEST(AttentionLargeTest, ForwardMatchesReference) {
  const AttentionCase c{"ViT", 2, 65, 3, 2, 64, {0, 1, 1}};
  const auto q = random_vector(c.q_size(), 15, -2.f, 2.f);
  const auto k = random_vector(c.kv_size(), 16, -2.f, 2.f);
  const auto v = random_vector(c.kv_size(), 17);
  std::vector<float> out(c.q_size()), probs(static_cast<size_t>(c.B) * c.H * c.T * c.T);
  attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), c.kv_head.data(), c.B,
                    c.T, c.H, c.G, c.d, c.scale());
  const Reference expected = reference_attention(c, to_double(q), to_double(k), to_double(v));
  for (size_t i = 0; i < probs.size(); ++i) EXPECT_NEAR(probs[i], expected.probs[i], 1e-5) << i;
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], expected.out[i], 1e-5) << i;
}

// Scores in the thousands: exp would overflow without the row maximum subtracted first.
TEST(AttentionLargeTest, ForwardIsStableForLargeScores) {
  const AttentionCase c{"GQA", 2, 5, 4, 2, 3, {0, 0, 1, 1}};
  const auto q = random_vector(c.q_size(), 18, -40.f, 40.f);
  const auto k = random_vector(c.kv_size(), 19, -40.f, 40.f);
  const auto v = random_vector(c.kv_size(), 20);
  std::vector<float> out(c.q_size()), probs(static_cast<size_t>(c.B) * c.H * c.T * c.T);
  attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), c.kv_head.data(), c.B,
                    c.T, c.H, c.G, c.d, c.scale());
  const Reference expected = reference_attention(c, to_double(q), to_double(k), to_double(v));
  for (size_t i = 0; i < probs.size(); ++i) EXPECT_NEAR(probs[i], expected.probs[i], 1e-5) << i;
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], expected.out[i], 1e-5) << i;
}

}  // namespace
}  // namespace dgqa::cpu
