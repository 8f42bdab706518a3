// make_backend and CpuBackend: memory, and every kernel forwarded to the dgqa::cpu function of
// the same name (same inputs, same bits).
#include "kernels/backend.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/key_norms.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/patch_embed.h"
#include "kernels/cpu/pgqa_noise.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::random_vector;

TEST(MakeBackendTest, CpuByName) {
  auto backend = make_backend("cpu");
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->name(), "cpu");
}

TEST(MakeBackendTest, CpuHoldsHostMemoryInFp32AndRefusesBf16) {
  auto backend = make_backend("cpu");
  EXPECT_TRUE(backend->host_memory());
  EXPECT_EQ(backend->precision(), Precision::kFP32);
  BackendOptions options;
  options.precision = Precision::kBF16;
  try {
    make_backend(options);
    ADD_FAILURE() << "no error for a bf16 CPU backend";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("model.precision"), std::string::npos) << error.what();
  }
}

TEST(MakeBackendTest, UnknownNameIsAnInputErrorListingTheValidNames) {
  std::vector<std::string> unknown = {"", "CPU", "tpu"};
#ifndef DGQA_WITH_CUDA
  unknown.push_back("cuda");  // known only to CUDA builds
#endif
  for (const std::string& name : unknown) {
    try {
      make_backend(name);
      ADD_FAILURE() << "no error for backend \"" << name << "\"";
    } catch (const InputError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("\"" + name + "\""), std::string::npos) << message;
      EXPECT_NE(message.find("cpu"), std::string::npos) << message;
    }
  }
}

TEST(CpuBackendTest, AllocateReturnsZeroedAlignedMemory) {
  auto backend = make_backend("cpu");
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{100}, size_t{4096}, size_t{1000003}}) {
    auto* memory = static_cast<unsigned char*>(backend->allocate(bytes));
    ASSERT_NE(memory, nullptr) << bytes;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(memory) % 64, 0u) << bytes;
    for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(memory[i], 0) << bytes << " byte " << i;
    backend->release(memory);
  }
}

TEST(CpuBackendTest, CopiesAndZero) {
  auto backend = make_backend("cpu");
  const auto host = random_vector(33, 1);
  auto* device = static_cast<float*>(backend->allocate(sizeof(float) * host.size()));
  backend->copy_to_device(device, host.data(), sizeof(float) * host.size());
  std::vector<float> back(host.size());
  backend->copy_to_host(back.data(), device, sizeof(float) * host.size());
  backend->synchronize();
  EXPECT_EQ(back, host);
  backend->zero(device, sizeof(float) * 10);
  backend->copy_to_host(back.data(), device, sizeof(float) * host.size());
  for (int i = 0; i < 33; ++i) EXPECT_EQ(back[i], i < 10 ? 0.f : host[i]) << i;
  backend->release(device);
}

// The backend keeps attention_backward's scratch between calls and grows it for a larger T.
TEST(CpuBackendTest, AttentionBackwardWithGrowingTokenCount) {
  auto backend = make_backend("cpu");
  const int B = 2, H = 4, G = 2, d = 3;
  const std::vector<int> kv_head = {0, 0, 0, 1};
  for (int T : {3, 9, 5, 17}) {
    const int q_size = B * T * H * d, kv_size = B * T * G * d;
    const auto q = random_vector(q_size, T), k = random_vector(kv_size, T + 1);
    const auto v = random_vector(kv_size, T + 2), dout = random_vector(q_size, T + 3);
    std::vector<float> out(q_size), probs(B * H * T * T);
    cpu::attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), kv_head.data(),
                           B, T, H, G, d, 0.5f);
    std::vector<float> dq(q_size, 0.f), dk(kv_size, 0.f), dv(kv_size, 0.f);
    auto dq_direct = dq, dk_direct = dk, dv_direct = dv;
    backend->attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(),
                                v.data(), probs.data(), kv_head.data(), B, T, H, G, d, 0.5f);
    std::vector<float> scratch(cpu::attention_backward_scratch_size(T));
    cpu::attention_backward(dq_direct.data(), dk_direct.data(), dv_direct.data(), dout.data(),
                            q.data(), k.data(), v.data(), probs.data(), kv_head.data(), B, T, H, G,
                            d, 0.5f, scratch.data());
    EXPECT_EQ(dq, dq_direct) << "T " << T;
    EXPECT_EQ(dk, dk_direct) << "T " << T;
    EXPECT_EQ(dv, dv_direct) << "T " << T;
  }
}

// Every other kernel: the backend gives the bits of the dgqa::cpu function.
TEST(CpuBackendTest, ForwardsEveryKernel) {
  auto backend = make_backend("cpu");
  const int N = 7, C = 5, OC = 3;
  const auto a = random_vector(64 * 64, 1), b = random_vector(64 * 64, 2);
  const auto c = random_vector(64 * 64, 3), positive = random_vector(64 * 64, 4, 0.5f, 1.5f);
  std::vector<float> x(64 * 64), y(64 * 64), z(64 * 64), w(64 * 64);
  auto reset = [&]() {
    x = a;
    y = b;
    z = c;
    w = positive;
  };
  auto expect_same = [&](auto&& via_backend, auto&& direct, const char* kernel) {
    reset();
    via_backend();
    const auto x1 = x, y1 = y, z1 = z, w1 = w;
    reset();
    direct();
    EXPECT_EQ(x1, x) << kernel;
    EXPECT_EQ(y1, y) << kernel;
    EXPECT_EQ(z1, z) << kernel;
    EXPECT_EQ(w1, w) << kernel;
  };
  const std::vector<int> labels = {0, 4, 2, 2, 1, 3, 4};
  const std::vector<int> mix_labels = {3, 1, 2, 0, 4, 4, 2};
  const std::vector<float> mix_weights = {0.25f, 1.f, 0.5f, 0.9f, 0.f, 0.6f, 0.3f};
  const std::vector<int> kv_head = {0, 0, 1};

  expect_same([&] { backend->matmul_forward(x.data(), a.data(), b.data(), c.data(), N, C, OC); },
              [&] { cpu::matmul_forward(x.data(), a.data(), b.data(), c.data(), N, C, OC); },
              "matmul_forward");
  expect_same(
      [&] {
        backend->matmul_backward(x.data(), y.data(), z.data(), a.data(), b.data(), c.data(), N, C,
                                 OC);
      },
      [&] {
        cpu::matmul_backward(x.data(), y.data(), z.data(), a.data(), b.data(), c.data(), N, C, OC);
      },
      "matmul_backward");
  expect_same(
      [&] {
        backend->layernorm_forward(x.data(), y.data(), w.data(), a.data(), b.data(), c.data(), N, C,
                                   1e-6f);
      },
      [&] {
        cpu::layernorm_forward(x.data(), y.data(), w.data(), a.data(), b.data(), c.data(), N, C,
                               1e-6f);
      },
      "layernorm_forward");
  expect_same(
      [&] {
        backend->layernorm_backward(x.data(), y.data(), z.data(), a.data(), b.data(), c.data(),
                                    b.data(), positive.data(), N, C);
      },
      [&] {
        cpu::layernorm_backward(x.data(), y.data(), z.data(), a.data(), b.data(), c.data(),
                                b.data(), positive.data(), N, C);
      },
      "layernorm_backward");
  expect_same([&] { backend->gelu_forward(x.data(), a.data(), 100); },
              [&] { cpu::gelu_forward(x.data(), a.data(), 100); }, "gelu_forward");
  expect_same([&] { backend->gelu_backward(x.data(), a.data(), b.data(), 100); },
              [&] { cpu::gelu_backward(x.data(), a.data(), b.data(), 100); }, "gelu_backward");
  expect_same(
      [&] {
        backend->attention_forward(x.data(), y.data(), a.data(), b.data(), c.data(), kv_head.data(),
                                   2, 5, 3, 2, 4, 0.5f);
      },
      [&] {
        cpu::attention_forward(x.data(), y.data(), a.data(), b.data(), c.data(), kv_head.data(), 2,
                               5, 3, 2, 4, 0.5f);
      },
      "attention_forward");
  expect_same([&] { backend->pgqa_make_noise(x.data(), 11, 2, 3, 4, 2, 3, 5); },
              [&] { cpu::pgqa_make_noise(x.data(), 11, 2, 3, 4, 2, 3, 5); }, "pgqa_make_noise");
  expect_same(
      [&] { backend->pgqa_noise_forward(x.data(), y.data(), a.data(), b.data(), 2, 3, 4, 2, 5); },
      [&] { cpu::pgqa_noise_forward(x.data(), y.data(), a.data(), b.data(), 2, 3, 4, 2, 5); },
      "pgqa_noise_forward");
  expect_same(
      [&] {
        backend->pgqa_noise_backward(x.data(), a.data(), b.data(), positive.data(), c.data(), 2, 3,
                                     4, 2, 5);
      },
      [&] {
        cpu::pgqa_noise_backward(x.data(), a.data(), b.data(), positive.data(), c.data(), 2, 3, 4,
                                 2, 5);
      },
      "pgqa_noise_backward");
  double loss_backend = 0.0, loss_direct = 1.0;
  expect_same(
      [&] {
        loss_backend = backend->softmax_cross_entropy_forward(x.data(), y.data(), a.data(),
                                                              labels.data(), mix_labels.data(),
                                                              mix_weights.data(), N, C, 0.1f);
      },
      [&] {
        loss_direct =
            cpu::softmax_cross_entropy_forward(x.data(), y.data(), a.data(), labels.data(),
                                               mix_labels.data(), mix_weights.data(), N, C, 0.1f);
      },
      "softmax_cross_entropy_forward");
  EXPECT_EQ(loss_backend, loss_direct);
  expect_same(
      [&] {
        backend->softmax_cross_entropy_backward(x.data(), a.data(), labels.data(),
                                                mix_labels.data(), mix_weights.data(), N, C, 0.25f,
                                                0.1f);
      },
      [&] {
        cpu::softmax_cross_entropy_backward(x.data(), a.data(), labels.data(), mix_labels.data(),
                                            mix_weights.data(), N, C, 0.25f, 0.1f);
      },
      "softmax_cross_entropy_backward");
  expect_same([&] { backend->im2col_patches(x.data(), a.data(), 2, 3, 6, 2); },
              [&] { cpu::im2col_patches(x.data(), a.data(), 2, 3, 6, 2); }, "im2col_patches");
  expect_same([&] { backend->key_norms(x.data(), a.data(), 2, 5, 3, 4); },
              [&] { cpu::key_norms(x.data(), a.data(), 2, 5, 3, 4); }, "key_norms");
  expect_same(
      [&] {
        backend->adamw_update(x.data(), a.data(), y.data(), w.data(), 100, 1e-2f, 0.9f, 0.99f,
                              1e-8f, 0.1f, 3);
      },
      [&] {
        cpu::adamw_update(x.data(), a.data(), y.data(), w.data(), 100, 1e-2f, 0.9f, 0.99f, 1e-8f,
                          0.1f, 3);
      },
      "adamw_update");
  expect_same([&] { backend->add_inplace(x.data(), a.data(), 100); },
              [&] { cpu::add_inplace(x.data(), a.data(), 100); }, "add_inplace");
  expect_same([&] { backend->scale_inplace(x.data(), 0.3f, 100); },
              [&] { cpu::scale_inplace(x.data(), 0.3f, 100); }, "scale_inplace");
  expect_same([&] { backend->scale_samples(x.data(), a.data(), b.data(), 4, 25); },
              [&] { cpu::scale_samples(x.data(), a.data(), b.data(), 4, 25); }, "scale_samples");
  EXPECT_EQ(backend->sum_squares(a.data(), 1000), cpu::sum_squares(a.data(), 1000));
  expect_same([&] { backend->tokens_forward(x.data(), a.data(), b.data(), c.data(), 2, 3, 5); },
              [&] { cpu::tokens_forward(x.data(), a.data(), b.data(), c.data(), 2, 3, 5); },
              "tokens_forward");
  expect_same([&] { backend->tokens_backward(x.data(), y.data(), z.data(), a.data(), 2, 3, 5); },
              [&] { cpu::tokens_backward(x.data(), y.data(), z.data(), a.data(), 2, 3, 5); },
              "tokens_backward");
  expect_same([&] { backend->gather_cls_forward(x.data(), a.data(), 2, 4, 5); },
              [&] { cpu::gather_cls_forward(x.data(), a.data(), 2, 4, 5); }, "gather_cls_forward");
  expect_same([&] { backend->gather_cls_backward(x.data(), a.data(), 2, 4, 5); },
              [&] { cpu::gather_cls_backward(x.data(), a.data(), 2, 4, 5); },
              "gather_cls_backward");
}

}  // namespace
}  // namespace dgqa
