// The whole ViT on the CUDA backend against the CPU backend, for every attention scheme: the
// same weights and images give the same loss, logits, allocations and gradients. Skipped
// without a CUDA build or without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "common/error.h"
#include "kernels/backend.h"
#include "model/vit.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

const AttentionScheme kSchemes[] = {AttentionScheme::kMHA,      AttentionScheme::kGQA,
                                    AttentionScheme::kKDGQA,    AttentionScheme::kDGQA_DIFF,
                                    AttentionScheme::kDGQA_EMA, AttentionScheme::kPGQA};

ModelConfig SmallConfig(AttentionScheme scheme) {
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
  return c;
}

class CudaModelTest : public ::testing::TestWithParam<AttentionScheme> {
 protected:
  void SetUp() override {
    try {
      cuda_ = make_backend("cuda");
    } catch (const std::exception& error) {
      GTEST_SKIP() << "no CUDA backend here: " << error.what();
    }
    cpu_ = make_backend("cpu");
  }
  std::unique_ptr<Backend> cpu_, cuda_;
};

std::vector<float> Grads(Backend& backend, VisionTransformer& model) {
  std::vector<float> host(model.layout().total_size());
  backend.copy_to_host(host.data(), model.grads(), host.size() * sizeof(float));
  return host;
}

TEST_P(CudaModelTest, ForwardAndBackwardMatchTheCpu) {
  const ModelConfig config = SmallConfig(GetParam());
  const int B = 4;
  VisionTransformer on_cpu(config, *cpu_, B, 3), on_gpu(config, *cuda_, B, 3);
  ASSERT_EQ(on_cpu.params_to_host(), on_gpu.params_to_host());  // the same initialisation
  const std::vector<float> images = testing::RandomVector(
      static_cast<size_t>(B) * config.in_channels * config.image_size * config.image_size, 5);
  const std::vector<int32_t> labels = {1, 7, 3, 9};
  LocalReducer reducer;
  const ForwardContext context{true, 0};

  on_cpu.zero_grads();
  on_gpu.zero_grads();
  const double cpu_loss = on_cpu.forward(images.data(), labels.data(), B, context, reducer);
  const double gpu_loss = on_gpu.forward(images.data(), labels.data(), B, context, reducer);
  // fp32 with other summation orders: the loss to 1e-4 relative, logits to 1e-4 absolute.
  EXPECT_NEAR(gpu_loss, cpu_loss, 1e-4 * std::fabs(cpu_loss));
  const std::vector<float> cpu_logits = on_cpu.logits_to_host();
  const std::vector<float> gpu_logits = on_gpu.logits_to_host();
  ASSERT_EQ(cpu_logits.size(), gpu_logits.size());
  for (size_t i = 0; i < cpu_logits.size(); ++i) EXPECT_NEAR(gpu_logits[i], cpu_logits[i], 1e-4);
  for (int l = 0; l < config.depth; ++l) {
    EXPECT_EQ(on_gpu.allocators()[l].active_allocation(),
              on_cpu.allocators()[l].active_allocation())
        << "layer " << l;
  }

  on_cpu.backward(1.f / B);
  on_gpu.backward(1.f / B);
  const std::vector<float> cpu_grads = Grads(*cpu_, on_cpu), gpu_grads = Grads(*cuda_, on_gpu);
  // Gradients: 1e-5 absolute plus 1e-3 relative to the largest gradient of the tensor.
  for (const TensorSlot& slot : on_cpu.layout().tensors()) {
    float largest = 0;
    for (int64_t i = 0; i < slot.size; ++i) {
      largest = std::max(largest, std::fabs(cpu_grads[slot.offset + i]));
    }
    for (int64_t i = 0; i < slot.size; ++i) {
      ASSERT_NEAR(gpu_grads[slot.offset + i], cpu_grads[slot.offset + i], 1e-5 + 1e-3 * largest)
          << slot.name << "[" << i << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, CudaModelTest, ::testing::ValuesIn(kSchemes),
                         [](const auto& test_param) {
                           return std::string(attention_scheme_name(test_param.param));
                         });

}  // namespace
}  // namespace dgqa
