// adamw_update against torch.optim.AdamW's update written out in double.
#include "kernels/cpu/adamw.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

struct Hyper {
  float lr, beta1, beta2, eps, weight_decay;
};

// One step of torch.optim.AdamW on every element (t is the 1-based step).
void reference_step(std::vector<double>& p, std::vector<double>& m, std::vector<double>& v,
                    const std::vector<float>& g, const Hyper& h, int t) {
  const double bias_correction1 = 1 - std::pow(double{h.beta1}, t);
  const double bias_correction2 = 1 - std::pow(double{h.beta2}, t);
  for (size_t i = 0; i < p.size(); ++i) {
    p[i] *= 1 - double{h.lr} * h.weight_decay;
    m[i] = h.beta1 * m[i] + (1 - double{h.beta1}) * g[i];
    v[i] = h.beta2 * v[i] + (1 - double{h.beta2}) * g[i] * g[i];
    const double denominator = std::sqrt(v[i]) / std::sqrt(bias_correction2) + h.eps;
    p[i] -= h.lr / bias_correction1 * m[i] / denominator;
  }
}

// Large lr and weight decay and an eps as large as the smallest gradients, so that the order
// of the operations and the place of eps show in the result.
TEST(AdamWTest, ThreeStepsMatchTorchFormula) {
  const Hyper h{0.1f, 0.9f, 0.999f, 1e-3f, 0.5f};
  const int n = 37;
  const auto params_initial = tests::random_vector(n, 1);
  std::vector<float> params = params_initial, m(n, 0.f), v(n, 0.f);
  std::vector<double> p_ref(params.begin(), params.end()), m_ref(n, 0.0), v_ref(n, 0.0);
  for (int t = 1; t <= 3; ++t) {
    auto grads = tests::random_vector(n, 10 + t);
    for (int i = 0; i < n; i += 3) grads[i] *= 1e-3f;  // gradients of the size of eps
    adamw_update(params.data(), grads.data(), m.data(), v.data(), n, h.lr, h.beta1, h.beta2, h.eps,
                 h.weight_decay, t);
    reference_step(p_ref, m_ref, v_ref, grads, h, t);
    for (int i = 0; i < n; ++i) {
      EXPECT_NEAR(params[i], p_ref[i], 1e-6 * (1 + std::fabs(p_ref[i]))) << "t " << t << " i " << i;
      EXPECT_NEAR(m[i], m_ref[i], 1e-6 * (1 + std::fabs(m_ref[i]))) << "t " << t << " i " << i;
      EXPECT_NEAR(v[i], v_ref[i], 1e-6 * (1 + std::fabs(v_ref[i]))) << "t " << t << " i " << i;
    }
  }
}

// Step 1 with bias correction moves every parameter by about lr * sign(g) (when |g| >> eps).
TEST(AdamWTest, FirstStepMovesByLearningRate) {
  const std::vector<float> grads = {0.5f, -2.f, 1e-2f};
  std::vector<float> params = {1.f, 1.f, 1.f}, m(3, 0.f), v(3, 0.f);
  adamw_update(params.data(), grads.data(), m.data(), v.data(), 3, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.f,
               1);
  EXPECT_NEAR(params[0], 0.99f, 1e-6);
  EXPECT_NEAR(params[1], 1.01f, 1e-6);
  EXPECT_NEAR(params[2], 0.99f, 1e-6);
}

}  // namespace
}  // namespace dgqa::cpu
