// The CUDA kernels' launch limits (kernels/cuda/launch_checks.h), checked on the CPU: every
// preset at its own resolution and at 384 pixels, with large per-GPU batches, launches within
// CUDA's limits; shapes beyond them are refused with a message naming the kernel and the limit.
// Also the grid sizes of kernels/cuda/grid.h.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/grid.h"
#include "kernels/cuda/launch_checks.h"
#include "trainer/config.h"

namespace dgqa::cuda {
namespace {

// Every launch of the kernels with a grid or shared memory that grows with the model's shape,
// as the host wrappers in kernels/cuda check them.
void check_model_launches(const ModelConfig& model, int batch) {
  const int T = model.num_tokens(), H = model.num_heads, G = model.num_kv_heads;
  const int d = model.head_dim();
  const int64_t rows = static_cast<int64_t>(batch) * T;
  check_grid("attention_forward", T, H, batch);
  check_shared_bytes("attention_forward", attention_forward_shared_bytes(T, d));
  check_grid("attention_backward", T, H, batch);
  check_shared_bytes("attention_backward", attention_backward_key_value_shared_bytes(T, d));
  check_grid("key_norms", G, batch);
  check_grid("pgqa_noise_forward", H, batch);
  check_grid("layernorm_backward", rows);
  check_grid("softmax_cross_entropy_forward", batch);
}

ModelConfig preset_model(const std::string& name, int image_size) {
  config::Config config;
  config.mutable_model()->set_preset(name);
  config.mutable_model()->set_image_size(image_size);
  return model_config_from(config);
}

TEST(LaunchChecksTest, EveryPresetFitsAtLargeBatches) {
  for (const char* preset : {"vit_tiny", "vit_small", "vit_base", "vit_large", "vit_huge"}) {
    for (int image_size : {224, 384}) {
      const ModelConfig model = preset_model(preset, image_size);
      for (int batch : {1, 256, 4096}) {
        EXPECT_NO_THROW(check_model_launches(model, batch))
            << preset << " at " << image_size << " px, batch " << batch;
      }
    }
  }
}

TEST(LaunchChecksTest, SharedMemoryOfTheAttentionRows) {
  // ViT-L/16 at 224: 197 tokens of 64 features.
  EXPECT_EQ(attention_forward_shared_bytes(197, 64), 4u * (64 + 197));
  EXPECT_EQ(attention_backward_key_value_shared_bytes(197, 64), 4u * (3 * 64 + 2 * 197));
  // The backward needs 8 T bytes for its two score rows: about 6000 tokens is the most.
  EXPECT_NO_THROW(check_shared_bytes("attention_backward",
                                     attention_backward_key_value_shared_bytes(6000, 64)));
  try {  // a 1024-pixel image in patches of 8: 16385 tokens
    check_shared_bytes("attention_backward", attention_backward_key_value_shared_bytes(16385, 64));
    ADD_FAILURE() << "16385 tokens passed the shared-memory check";
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("attention_backward"), std::string::npos) << message;
    EXPECT_NE(message.find("48 KiB"), std::string::npos) << message;
  }
}

TEST(LaunchChecksTest, GridLimitsNameTheKernel) {
  EXPECT_NO_THROW(check_grid("k", kMaxGridX, kMaxGridYZ, kMaxGridYZ));
  EXPECT_THROW(check_grid("k", kMaxGridX + 1), std::invalid_argument);
  EXPECT_THROW(check_grid("k", 1, kMaxGridYZ + 1), std::invalid_argument);
  try {  // a per-GPU batch of 70000 does not fit the grid's z dimension
    check_grid("attention_forward", 197, 16, 70000);
    ADD_FAILURE() << "a grid z of 70000 passed";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("attention_forward"), std::string::npos);
  }
}

TEST(LaunchChecksTest, GridSizesCoverEveryElement) {
  EXPECT_EQ(blocks_for(0, 256), 0);
  EXPECT_EQ(blocks_for(1, 256), 1);
  EXPECT_EQ(blocks_for(256, 256), 1);
  EXPECT_EQ(blocks_for(257, 256), 2);
  EXPECT_EQ(blocks_for(int64_t{1} << 40, 128), int64_t{1} << 33);  // beyond int
  EXPECT_EQ(grid_stride_blocks(257, 256), 2);
  EXPECT_EQ(grid_stride_blocks(int64_t{1} << 24, 256), 1 << 16);
  EXPECT_EQ(grid_stride_blocks(int64_t{1} << 24 | 1, 256), kMaxGridStrideBlocks);  // capped
  EXPECT_EQ(grid_stride_blocks(int64_t{1} << 40, 256), kMaxGridStrideBlocks);
}

}  // namespace
}  // namespace dgqa::cuda
