// CudaBackend against CpuBackend: the same kernels on the same random inputs, through the Backend
// interface only (allocate, copy_to_device, the kernel, copy_to_host), so that the test exercises
// the backend class as the model uses it. Needs a GPU: without one (or in a build without
// -DDGQA_CUDA=ON) every test skips. This file includes no CUDA header, so it builds either way.
//
// Tolerances, |cuda - cpu| <= abs + rel * |cpu| per element: both compute in fp32, but sum in
// different orders (cuBLAS's and OpenBLAS's blockings; an FMA where the CPU rounds twice).
//   GEMMs with K <= 4096, operands scaled so that a dot product is O(1):  rel 1e-4, abs 1e-5
//   element-wise kernels (one or a few float operations per element):    rel 1e-6, abs 1e-6
//   sum_squares (a double sum of floats, in another order):              rel 1e-10
#include "kernels/backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/device_array.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::DeviceArray;
using tests::random_vector;

constexpr double kGemmRel = 1e-4, kGemmAbs = 1e-5;
constexpr double kElementwiseRel = 1e-6, kElementwiseAbs = 1e-6;

using tests::Op;
using tests::run_on_backend;

// Expects every element of actual within abs + rel * |expected| of expected; reports the count
// of elements that are not, and the worst of them.
void expect_close(const std::vector<float>& actual, const std::vector<float>& expected, double rel,
                  double abs, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t failures = 0, worst = 0;
  double worst_excess = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double error = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    const double excess = error / (abs + rel * std::fabs(expected[i]));
    if (!(excess <= 1.0)) {  // also catches NaN
      ++failures;
      if (!(excess <= worst_excess)) worst_excess = excess, worst = i;
    }
  }
  EXPECT_EQ(failures, 0u) << what << ": " << failures << " of " << actual.size()
                          << " elements out of tolerance; worst [" << worst << "]: cuda "
                          << actual[worst] << " vs cpu " << expected[worst];
}

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef DGQA_WITH_CUDA
    GTEST_SKIP() << "no GPU: built without -DDGQA_CUDA=ON";
#else
    try {
      cuda_ = make_backend("cuda");
    } catch (const InputError& error) {
      GTEST_SKIP() << "no GPU: " << error.what();
    }
#endif
    cpu_ = make_backend("cpu");
  }

  // Runs op on both backends with the same inputs; expects every buffer to agree.
  void expect_same_results(const std::vector<std::vector<float>>& host, const Op& op, double rel,
                           double abs, const std::string& what) {
    const auto expected = run_on_backend(*cpu_, host, op);
    const auto actual = run_on_backend(*cuda_, host, op);
    for (size_t i = 0; i < host.size(); ++i) {
      expect_close(actual[i], expected[i], rel, abs, what + ", buffer " + std::to_string(i));
    }
  }

  std::unique_ptr<Backend> cpu_, cuda_;
};

// Uniform in [-scale, scale).
std::vector<float> uniform_values(size_t n, uint32_t seed, float scale = 1.f) {
  return random_vector(n, seed, -scale, scale);
}

struct MatmulShape {
  int N, C, OC;
};
const MatmulShape kMatmulShapes[] = {{7, 5, 3}, {128, 384, 1152}, {394, 1024, 4096}};

std::string describe(const MatmulShape& shape) {
  return "(N, C, OC) = (" + std::to_string(shape.N) + ", " + std::to_string(shape.C) + ", " +
         std::to_string(shape.OC) + ")";
}

TEST_F(CudaBackendTest, NameAllocateZeroAndCopies) {
  EXPECT_EQ(cuda_->name(), "cuda");
  EXPECT_EQ(cuda_->allocate(0), nullptr);
  const size_t n = 1000003;
  auto* memory = static_cast<float*>(cuda_->allocate(sizeof(float) * n));
  std::vector<float> host(n, 1.f);
  cuda_->copy_to_host(host.data(), memory, sizeof(float) * n);
  EXPECT_EQ(host, std::vector<float>(n, 0.f)) << "allocate() must return zeroed memory";

  const std::vector<float> values = uniform_values(n, 1);
  cuda_->copy_to_device(memory, values.data(), sizeof(float) * n);
  cuda_->copy_to_host(host.data(), memory, sizeof(float) * n);
  EXPECT_EQ(host, values);

  cuda_->zero(memory + 10, sizeof(float) * 20);
  cuda_->synchronize();
  cuda_->copy_to_host(host.data(), memory, sizeof(float) * n);
  std::vector<float> zeroed = values;
  std::fill(zeroed.begin() + 10, zeroed.begin() + 30, 0.f);
  EXPECT_EQ(host, zeroed);
  cuda_->release(memory);
}

TEST_F(CudaBackendTest, MatmulForward) {
  for (const MatmulShape& shape : kMatmulShapes) {
    const int N = shape.N, C = shape.C, OC = shape.OC;
    for (const bool with_bias : {true, false}) {
      // Scaled like a torch Linear's init, so that each output is O(1).
      const std::vector<std::vector<float>> host = {
          uniform_values(static_cast<size_t>(N) * OC, 10),  // out: overwritten, whatever it held
          uniform_values(static_cast<size_t>(N) * C, 11),   // inp
          uniform_values(static_cast<size_t>(OC) * C, 12, 1.f / std::sqrt(static_cast<float>(C))),
          uniform_values(OC, 13)};  // bias
      expect_same_results(
          host,
          [&](Backend& backend, const std::vector<float*>& b) {
            backend.matmul_forward(b[0], b[1], b[2], with_bias ? b[3] : nullptr, N, C, OC);
          },
          kGemmRel, kGemmAbs, describe(shape) + (with_bias ? " with bias" : " without bias"));
    }
  }
}

TEST_F(CudaBackendTest, MatmulBackwardAccumulates) {
  for (const MatmulShape& shape : kMatmulShapes) {
    const int N = shape.N, C = shape.C, OC = shape.OC;
    for (const bool with_dinp : {true, false}) {
      for (const bool with_dbias : {true, false}) {
        // The gradients start non-zero: the kernel must add to them.
        const std::vector<std::vector<float>> host = {
            uniform_values(static_cast<size_t>(N) * C, 20),   // dinp
            uniform_values(static_cast<size_t>(OC) * C, 21),  // dweight
            uniform_values(OC, 22),                           // dbias
            uniform_values(static_cast<size_t>(N) * OC, 23,
                           1.f / std::sqrt(static_cast<float>(OC))),
            uniform_values(static_cast<size_t>(N) * C, 24),  // inp
            uniform_values(static_cast<size_t>(OC) * C, 25,
                           1.f / std::sqrt(static_cast<float>(C)))};
        expect_same_results(
            host,
            [&](Backend& backend, const std::vector<float*>& b) {
              backend.matmul_backward(with_dinp ? b[0] : nullptr, b[1], with_dbias ? b[2] : nullptr,
                                      b[3], b[4], b[5], N, C, OC);
            },
            kGemmRel, kGemmAbs,
            describe(shape) + (with_dinp ? " with dinp" : " without dinp") +
                (with_dbias ? " with dbias" : " without dbias"));
      }
    }
  }
}

TEST_F(CudaBackendTest, AddAndScale) {
  for (const int64_t n : {int64_t{1}, int64_t{1000}, int64_t{1000003}}) {
    const std::vector<std::vector<float>> host = {uniform_values(n, 30), uniform_values(n, 31)};
    expect_same_results(
        host,
        [&](Backend& backend, const std::vector<float*>& b) {
          backend.add_inplace(b[0], b[1], n);
          backend.scale_inplace(b[0], 0.37f, n);
        },
        kElementwiseRel, kElementwiseAbs, "n = " + std::to_string(n));
  }
}

TEST_F(CudaBackendTest, ScaleSamples) {
  for (const int64_t n : {int64_t{1}, int64_t{1000}, int64_t{250001}}) {
    const int B = 4;
    const std::vector<std::vector<float>> host = {
        uniform_values(B * n, 32), uniform_values(B * n, 33), {0.f, 1.5f, -0.25f, 1.f}};
    expect_same_results(
        host,
        [&](Backend& backend, const std::vector<float*>& b) {
          backend.scale_samples(b[0], b[1], b[2], B, n);
          backend.scale_samples(b[1], b[1], b[2], B, n);  // in place
        },
        0.0, 0.0, "n = " + std::to_string(n));
  }
}

TEST_F(CudaBackendTest, SumSquares) {
  for (const int64_t n : {int64_t{0}, int64_t{1}, int64_t{1000}, int64_t{5000011}}) {
    const std::vector<float> x = uniform_values(n, 40);
    double results[2];
    Backend* backends[2] = {cpu_.get(), cuda_.get()};
    for (int i = 0; i < 2; ++i) {
      run_on_backend(*backends[i], {x}, [&](Backend& backend, const std::vector<float*>& b) {
        results[i] = backend.sum_squares(b[0], n);
      });
    }
    EXPECT_NEAR(results[1], results[0], 1e-10 * results[0]) << "n = " << n;
  }
}

TEST_F(CudaBackendTest, TokensForwardAndBackward) {
  const int B = 5, N = 196, D = 64, T = N + 1;
  const std::vector<std::vector<float>> forward = {
      uniform_values(static_cast<size_t>(B) * T * D, 50),  // x: overwritten
      uniform_values(static_cast<size_t>(B) * N * D, 51),  // patches
      uniform_values(D, 52),                               // cls
      uniform_values(static_cast<size_t>(T) * D, 53)};     // pos
  expect_same_results(
      forward,
      [&](Backend& backend, const std::vector<float*>& b) {
        backend.tokens_forward(b[0], b[1], b[2], b[3], B, N, D);
      },
      kElementwiseRel, kElementwiseAbs, "tokens_forward");
  // The gradients start non-zero: the kernel must add to them.
  const std::vector<std::vector<float>> backward = {
      uniform_values(static_cast<size_t>(B) * N * D, 54),   // dpatches
      uniform_values(D, 55),                                // dcls
      uniform_values(static_cast<size_t>(T) * D, 56),       // dpos
      uniform_values(static_cast<size_t>(B) * T * D, 57)};  // dx
  expect_same_results(
      backward,
      [&](Backend& backend, const std::vector<float*>& b) {
        backend.tokens_backward(b[0], b[1], b[2], b[3], B, N, D);
      },
      kElementwiseRel, kElementwiseAbs, "tokens_backward");
}

TEST_F(CudaBackendTest, GatherClsForwardAndBackward) {
  const int B = 7, T = 65, D = 48;
  const std::vector<std::vector<float>> host = {uniform_values(static_cast<size_t>(B) * D, 60),
                                                uniform_values(static_cast<size_t>(B) * T * D, 61)};
  expect_same_results(
      host,
      [&](Backend& backend, const std::vector<float*>& b) {
        backend.gather_cls_forward(b[0], b[1], B, T, D);
      },
      kElementwiseRel, kElementwiseAbs, "gather_cls_forward");
  // Backward: buffer 1 (dx) starts non-zero and accumulates buffer 0 (dout).
  expect_same_results(
      host,
      [&](Backend& backend, const std::vector<float*>& b) {
        backend.gather_cls_backward(b[1], b[0], B, T, D);
      },
      kElementwiseRel, kElementwiseAbs, "gather_cls_backward");
}

TEST_F(CudaBackendTest, Im2colPatches) {
  struct Shape {
    int B, C, S, p;
  };
  for (const Shape& s : {Shape{2, 3, 32, 4}, Shape{3, 3, 224, 16}, Shape{1, 2, 6, 3}}) {
    const int patches = s.B * (s.S / s.p) * (s.S / s.p);
    const std::vector<std::vector<float>> host = {
        uniform_values(static_cast<size_t>(patches) * s.C * s.p * s.p, 70),  // cols: overwritten
        uniform_values(static_cast<size_t>(s.B) * s.C * s.S * s.S, 71)};     // img
    expect_same_results(
        host,
        [&](Backend& backend, const std::vector<float*>& b) {
          backend.im2col_patches(b[0], b[1], s.B, s.C, s.S, s.p);
        },
        kElementwiseRel, kElementwiseAbs, "S = " + std::to_string(s.S));
  }
}

TEST_F(CudaBackendTest, AdamwThreeSteps) {
  const int64_t n = 100003;
  const std::vector<std::vector<float>> host = {uniform_values(n, 80),        // params
                                                uniform_values(n, 81),        // grads of step 1
                                                uniform_values(n, 82),        // grads of step 2
                                                uniform_values(n, 83),        // grads of step 3
                                                std::vector<float>(n, 0.f),   // m
                                                std::vector<float>(n, 0.f)};  // v
  expect_same_results(
      host,
      [&](Backend& backend, const std::vector<float*>& b) {
        for (int64_t t = 1; t <= 3; ++t) {
          backend.adamw_update(b[0], b[t], b[4], b[5], n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f, t);
        }
      },
      kElementwiseRel, kElementwiseAbs, "adamw");
}

// The CUDA twin of the weight EMA gives the CPU's bits: both branches of the lerp, and the
// weight 1 of the first update (an exact copy).
TEST_F(CudaBackendTest, WeightEmaUpdateIsTheCpus) {
  const int64_t n = 100003;
  const std::vector<std::vector<float>> host = {uniform_values(n, 90),   // ema
                                                uniform_values(n, 91)};  // params
  expect_same_results(
      host,
      [&](Backend& backend, const std::vector<float*>& b) {
        for (float weight : {1.f, 0.37f, 0.6f, 0.001f}) {
          backend.weight_ema_update(b[0], b[1], n, weight);
          backend.scale_inplace(b[1], 0.9f, n);  // the weights move between updates
        }
      },
      0, 0, "weight EMA");
}

}  // namespace
}  // namespace dgqa
