// The whole ViT on the CUDA backend against the CPU backend, for every attention scheme and with
// drop path: the same weights and images give the same loss, logits, allocations and gradients;
// and recomputed blocks give the bits of kept activations. Skipped
// without a CUDA build or without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "common/error.h"
#include "kernels/backend.h"
#include "model/vit.h"
#include "tests/model_runs.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

const AttentionScheme kSchemes[] = {AttentionScheme::kMHA,      AttentionScheme::kGQA,
                                    AttentionScheme::kKDGQA,    AttentionScheme::kDGQA_DIFF,
                                    AttentionScheme::kDGQA_EMA, AttentionScheme::kPGQA};

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
  // One training step of the small test model on both backends must agree.
  void expect_same_run(AttentionScheme scheme, float drop_path_rate, bool mixed_targets = false);

  std::unique_ptr<Backend> cpu_, cuda_;
};

void CudaModelTest::expect_same_run(AttentionScheme scheme, float drop_path_rate,
                                    bool mixed_targets) {
  const tests::ModelRun cpu =
      tests::run_small_test_model(*cpu_, scheme, drop_path_rate, false, mixed_targets);
  const tests::ModelRun gpu =
      tests::run_small_test_model(*cuda_, scheme, drop_path_rate, false, mixed_targets);
  ASSERT_EQ(cpu.initial_params, gpu.initial_params);  // the same initialisation
  // fp32 with other summation orders: the loss to 1e-4 relative, logits to 1e-4 absolute.
  EXPECT_NEAR(gpu.loss, cpu.loss, 1e-4 * std::fabs(cpu.loss));
  ASSERT_EQ(cpu.logits.size(), gpu.logits.size());
  for (size_t i = 0; i < cpu.logits.size(); ++i) EXPECT_NEAR(gpu.logits[i], cpu.logits[i], 1e-4);
  ASSERT_EQ(gpu.allocations.size(), cpu.allocations.size());
  for (size_t l = 0; l < cpu.allocations.size(); ++l) {
    EXPECT_EQ(gpu.allocations[l], cpu.allocations[l]) << "layer " << l;
  }

  // Gradients: 1e-5 absolute plus 1e-3 relative to the largest gradient of the tensor.
  const VisionTransformer layout_source(tests::small_test_model(scheme), *cpu_, 1, 3);
  for (const TensorSlot& slot : layout_source.layout().tensors()) {
    float largest = 0;
    for (int64_t i = 0; i < slot.size; ++i) {
      largest = std::max(largest, std::fabs(cpu.grads[slot.offset + i]));
    }
    for (int64_t i = 0; i < slot.size; ++i) {
      ASSERT_NEAR(gpu.grads[slot.offset + i], cpu.grads[slot.offset + i], 1e-5 + 1e-3 * largest)
          << slot.name << "[" << i << "]";
    }
  }
}

// Recomputing each block before its backward runs the same kernels on the same inputs: the bits
// of keeping every activation (docs/design.md §3.9).
TEST_P(CudaModelTest, RecomputeGivesTheSameBits) {
  const tests::ModelRun kept = tests::run_small_test_model(*cuda_, GetParam());
  const tests::ModelRun recomputed = tests::run_small_test_model(*cuda_, GetParam(), 0.f, true);
  EXPECT_EQ(recomputed.loss, kept.loss);
  EXPECT_EQ(recomputed.logits, kept.logits);
  EXPECT_EQ(recomputed.allocations, kept.allocations);
  EXPECT_TRUE(recomputed.grads == kept.grads);
}

TEST_P(CudaModelTest, ForwardAndBackwardMatchTheCpu) {
  expect_same_run(GetParam(), 0.f);
}

TEST_P(CudaModelTest, DropPathMatchesTheCpu) {
  expect_same_run(GetParam(), 0.9f);  // block 1 drops each branch of an image with p = 0.9
}

// Mixup/CutMix's soft targets (two labels and a weight per image, label-smoothed) on the GPU.
TEST_P(CudaModelTest, MixedTargetsMatchTheCpu) {
  expect_same_run(GetParam(), 0.f, /*mixed_targets=*/true);
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, CudaModelTest, ::testing::ValuesIn(kSchemes),
                         [](const auto& test_param) {
                           return std::string(attention_scheme_name(test_param.param));
                         });

}  // namespace
}  // namespace dgqa
