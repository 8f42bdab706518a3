// The whole ViT: parameter layout, a finite-difference gradient check for every attention
// scheme, and properties that follow from the specification.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <new>
#include <vector>

#include "kernels/backend.h"
#include "kernels/profiling_backend.h"
#include "model/memory_estimate.h"
#include "model/vit.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

ModelConfig tiny_config(AttentionScheme scheme) {
  ModelConfig c;
  c.image_size = 8;
  c.patch_size = 4;
  c.in_channels = 2;
  c.num_classes = 3;
  c.embed_dim = 16;
  c.depth = 2;
  c.num_heads = 4;
  c.num_kv_heads = scheme == AttentionScheme::kMHA ? 4 : 2;
  c.attention = scheme;
  c.dgqa_window = 1;
  c.init_std = 0.3f;  // large weights make every gradient visible above float noise
  return c;
}

struct Inputs {
  std::vector<float> images;
  std::vector<int32_t> labels;
  int batch;
};

Inputs make_inputs(const ModelConfig& c, int batch, uint32_t seed) {
  Inputs in;
  in.batch = batch;
  in.images = tests::random_vector(
      static_cast<size_t>(batch) * c.in_channels * c.image_size * c.image_size, seed);
  for (int b = 0; b < batch; ++b) in.labels.push_back(b % c.num_classes);
  return in;
}

double mean_loss(VisionTransformer& model, const Inputs& in, const ForwardContext& context) {
  LocalReducer reducer;
  return model.forward(in.images.data(), in.labels.data(), in.batch, context, reducer) / in.batch;
}

std::vector<std::vector<int>> allocations(const VisionTransformer& model) {
  std::vector<std::vector<int>> result;
  for (const GroupAllocator& a : model.allocators()) result.push_back(a.active_allocation());
  return result;
}

const AttentionScheme kAllSchemes[] = {AttentionScheme::kMHA,      AttentionScheme::kGQA,
                                       AttentionScheme::kKDGQA,    AttentionScheme::kDGQA_DIFF,
                                       AttentionScheme::kDGQA_EMA, AttentionScheme::kPGQA};

// A CPU backend whose allocate throws std::bad_alloc from its `fail_at`-th call on, and that
// counts the allocations not given back.
class FailingAllocationBackend : public ProfilingBackend {
 public:
  explicit FailingAllocationBackend(int fail_at)
      : ProfilingBackend(make_backend("cpu")), fail_at_(fail_at) {}
  void* allocate(size_t bytes) override {
    if (++calls_ >= fail_at_) throw std::bad_alloc();
    ++outstanding_;
    sizes_.push_back(bytes);
    return ProfilingBackend::allocate(bytes);
  }
  void release(void* pointer) override {
    --outstanding_;
    ProfilingBackend::release(pointer);
  }
  int outstanding() const { return outstanding_; }
  const std::vector<size_t>& sizes() const { return sizes_; }

 private:
  std::vector<size_t> sizes_;
  int fail_at_, calls_ = 0, outstanding_ = 0;
};

// The constructor allocates the parameters, the gradients, then the activation buffers: a
// failure at any of them gives back what was allocated before it.
TEST(ModelConstructionTest, FailedAllocationLeaksNothing) {
  for (int fail_at = 1; fail_at <= 3; ++fail_at) {
    FailingAllocationBackend backend(fail_at);
    EXPECT_THROW(VisionTransformer(tiny_config(AttentionScheme::kGQA), backend, 2, 7),
                 std::bad_alloc);
    EXPECT_EQ(backend.outstanding(), 0) << "allocation " << fail_at << " failed";
  }
  FailingAllocationBackend backend(100);
  { VisionTransformer model(tiny_config(AttentionScheme::kGQA), backend, 2, 7); }
  EXPECT_EQ(backend.outstanding(), 0);
}

// The up-front estimate (model/memory_estimate.h) against what the model allocates: parameters
// exactly (without the 16-float alignment of each tensor), activations within the alignment of
// each buffer.
TEST(MemoryEstimateTest, MatchesTheModelsAllocations) {
  for (AttentionScheme scheme : {AttentionScheme::kGQA, AttentionScheme::kPGQA}) {
    for (int batch : {1, 5}) {
      for (bool recompute : {false, true}) {
        SCOPED_TRACE(recompute ? "recompute" : "no recompute");
        ModelConfig config = tiny_config(scheme);
        config.depth = 3;
        config.drop_path_rate = batch == 5 ? 0.1f : 0.f;
        FailingAllocationBackend backend(100);
        VisionTransformer model(config, backend, batch, 7, recompute);
        ASSERT_EQ(backend.sizes().size(), 3u);  // parameters, gradients, activations
        double parameters = 0;  // total_size() adds the 16-float alignment of each tensor
        for (const TensorSlot& slot : model.layout().tensors()) parameters += slot.size;
        EXPECT_EQ(parameter_count(config).total(), parameters);
        const double estimate = activation_floats(config, batch, recompute);
        const double allocated = static_cast<double>(backend.sizes()[2]) / sizeof(float);
        EXPECT_LE(estimate, allocated);
        EXPECT_GE(estimate, allocated - 16.0 * 30 * config.depth - 16.0 * 40);
      }
    }
  }
}

// Recomputation keeps one block's activations instead of all of them: at depth 12 the
// activation memory the model allocates shrinks by more than half (one block in 12, besides
// every block's input, against 12 blocks).
TEST(MemoryEstimateTest, RecomputeAllocatesLessActivationMemory) {
  for (AttentionScheme scheme : {AttentionScheme::kGQA, AttentionScheme::kPGQA}) {
    ModelConfig config = tiny_config(scheme);
    config.depth = 12;
    std::vector<size_t> activation_bytes;
    for (bool recompute : {false, true}) {
      FailingAllocationBackend backend(100);
      VisionTransformer model(config, backend, 8, 7, recompute);
      activation_bytes.push_back(backend.sizes()[2]);
    }
    EXPECT_LT(2 * activation_bytes[1], activation_bytes[0]);
  }
}

// The per-rank breakdown of training memory for the tiny GQA model, counted by hand: 6723
// parameters (per block: LayerNorms 64, Q 272, K and V 272, projection 272, fc1 1088, fc2 1040,
// 3008 twice; embedding 624; head 83), and for 2 images (T = 5) a scratch of
// B T (5D + 2 G d + 2F) = 10 x 224 floats.
TEST(MemoryEstimateTest, RankMemoryCountsEachKindByHand) {
  const ModelConfig config = tiny_config(AttentionScheme::kGQA);
  constexpr double P = 6723;
  RankSetup setup;
  setup.micro_batch = 2;
  const RankMemory fp32 = rank_memory(config, setup);
  EXPECT_EQ(fp32.parameters, 4 * P);
  EXPECT_EQ(fp32.gradients, 4 * P);
  EXPECT_EQ(fp32.optimizer, 8 * P);  // two moments
  EXPECT_EQ(fp32.workspace, 4 * 2240.0);
  EXPECT_EQ(fp32.activations + fp32.workspace, 4 * activation_floats(config, 2));
  EXPECT_EQ(fp32.total(), 16 * P + 4 * activation_floats(config, 2));

  setup.bf16 = true;  // bf16 weights read by the products; the fp32 weights besides the moments
  const RankMemory bf16 = rank_memory(config, setup);
  EXPECT_EQ(bf16.parameters, 2 * P);
  EXPECT_EQ(bf16.optimizer, 12 * P);
  // The casts: fc2's input (B T F = 640) over the patch embedding's (B N C p^2 = 256), and fc1's
  // output gradient (640), 2 bytes each.
  EXPECT_EQ(bf16.workspace, fp32.workspace + 2 * (640 + 640));

  setup.ranks = 4;  // only ZeRO-1 makes the ranks matter, and only for the optimizer state
  EXPECT_EQ(rank_memory(config, setup).total(), bf16.total());
  setup.zero_stage = 1;
  const RankMemory zero = rank_memory(config, setup);
  EXPECT_EQ(zero.optimizer, 2 * P + 4 * P);  // the moments divided, the fp32 weights whole
  EXPECT_EQ(zero.total(), bf16.total() - 6 * P);

  setup.weight_ema = true;  // its fp32 buffer is not divided
  EXPECT_EQ(rank_memory(config, setup).optimizer, 10 * P);
  setup.weight_ema = false;

  setup.recompute = true;
  EXPECT_EQ(rank_memory(config, setup).activations, 4 * activation_parts(config, 2, true).kept);
  EXPECT_LT(rank_memory(config, setup).activations, zero.activations);
}

// The planner's answer is the largest micro-batch whose total fits: B fits, B + 1 does not.
TEST(MemoryEstimateTest, LargestMicroBatchIsTheLastThatFits) {
  ModelConfig vit_base;  // the defaults: ViT-B/16 at 224
  for (const bool recompute : {false, true}) {
    for (const int zero : {0, 1}) {
      RankSetup setup;
      setup.recompute = recompute;
      setup.bf16 = true;
      setup.ranks = 8;
      setup.zero_stage = zero;
      for (const double gib : {2.0, 16.0, 80.0}) {
        const double bytes = gib * (1 << 30);
        const int batch = largest_micro_batch(vit_base, setup, bytes);
        ASSERT_GT(batch, 0);
        setup.micro_batch = batch;
        EXPECT_LE(rank_memory(vit_base, setup).total(), bytes);
        setup.micro_batch = batch + 1;
        EXPECT_GT(rank_memory(vit_base, setup).total(), bytes);
      }
    }
  }
  RankSetup setup;
  setup.micro_batch = 7;
  const double exactly_seven = rank_memory(vit_base, setup).total();
  EXPECT_EQ(largest_micro_batch(vit_base, setup, exactly_seven), 7);
  EXPECT_EQ(largest_micro_batch(vit_base, setup, exactly_seven - 1), 6);
  setup.micro_batch = 0;  // the weights, gradients and moments alone: no image fits
  EXPECT_EQ(largest_micro_batch(vit_base, setup, rank_memory(vit_base, setup).total()), 0);
}

// Compares the backward pass of a training forward at `step` with central differences of the
// mean loss over a few entries of every tensor. Drop path's masks depend only on the step, so
// every evaluation of the loss sees the same ones. With `mixed_targets`, the loss is that of
// Mixup/CutMix's soft targets (each image's label and the next image's, weights in (0, 1)),
// label-smoothed by 0.1.
void expect_gradients_match_finite_differences(const ModelConfig& config, int batch, int64_t step,
                                               bool mixed_targets = false) {
  std::unique_ptr<Backend> backend = make_backend("cpu");
  VisionTransformer model(config, *backend, batch, /*seed=*/7);
  const Inputs in = make_inputs(config, batch, 11);
  ForwardContext context;  // training: DGQA computes its allocation at step 0
  context.step = step;
  std::vector<int32_t> mix_labels;
  std::vector<float> mix_weights;
  if (mixed_targets) {
    for (int b = 0; b < batch; ++b) {
      mix_labels.push_back(in.labels[(b + 1) % batch]);
      mix_weights.push_back(0.2f + 0.6f * b / batch);
    }
    context.label_smoothing = 0.1f;
    context.mix_labels = mix_labels.data();
    context.mix_weights = mix_weights.data();
  }

  // DGQA updates its state on a window step; every evaluation of the loss must see the same
  // starting state, so it is restored before each forward pass.
  std::vector<std::pair<std::vector<float>, std::vector<int64_t>>> state;
  for (const GroupAllocator& a : model.allocators()) {
    state.push_back({a.cache(), {a.allocation().begin(), a.allocation().end()}});
  }
  auto restore = [&] {
    for (size_t l = 0; l < state.size(); ++l)
      model.allocators()[l].set_state(state[l].first, state[l].second);
  };

  model.zero_grads();
  mean_loss(model, in, context);
  const auto reference_allocation = allocations(model);
  model.backward(1.f / in.batch);
  std::vector<float> grads(model.layout().total_size());
  backend->copy_to_host(grads.data(), model.grads(), grads.size() * sizeof(float));
  std::vector<float> params = model.params_to_host();

  const float eps = 2e-3f;
  int checked = 0, skipped = 0;
  for (const TensorSlot& slot : model.layout().tensors()) {
    // A few entries of every tensor: first, last and two in between.
    for (int64_t i : {int64_t{0}, slot.size / 3, 2 * slot.size / 3, slot.size - 1}) {
      const int64_t at = slot.offset + i;
      const float original = params[at];
      params[at] = original + eps;
      model.params_from_host(params);
      restore();
      const double plus = mean_loss(model, in, context);
      const bool same_plus = allocations(model) == reference_allocation;
      params[at] = original - eps;
      model.params_from_host(params);
      restore();
      const double minus = mean_loss(model, in, context);
      const bool same_minus = allocations(model) == reference_allocation;
      params[at] = original;
      if (!same_plus || !same_minus) {  // the step crossed an allocation boundary
        ++skipped;
        continue;
      }
      const double numeric = (plus - minus) / (2 * eps);
      EXPECT_NEAR(grads[at], numeric, 1e-3 + 3e-2 * std::fabs(numeric))
          << slot.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_LE(skipped, 2);
  EXPECT_GT(checked, 100);
}

class ModelGradientTest : public ::testing::TestWithParam<AttentionScheme> {};

TEST_P(ModelGradientTest, BackwardMatchesFiniteDifferences) {
  expect_gradients_match_finite_differences(tiny_config(GetParam()), 3, 0);
}

TEST_P(ModelGradientTest, MixedTargetsBackwardMatchesFiniteDifferences) {
  expect_gradients_match_finite_differences(tiny_config(GetParam()), 3, 0, /*mixed_targets=*/true);
}

// Drop path at a rate that drops some branches of some images (depth 3: rates 0, 0.35, 0.7).
TEST(ModelDropPathTest, BackwardMatchesFiniteDifferences) {
  for (AttentionScheme scheme : {AttentionScheme::kGQA, AttentionScheme::kPGQA}) {
    ModelConfig config = tiny_config(scheme);
    config.depth = 3;
    config.drop_path_rate = 0.7f;
    for (int64_t step : {0, 5}) expect_gradients_match_finite_differences(config, 4, step);
  }
}

// Drop path changes training losses, step by step, and leaves evaluation alone.
TEST(ModelDropPathTest, TrainingOnlyAndKeyedByStep) {
  ModelConfig config = tiny_config(AttentionScheme::kGQA);
  config.depth = 3;
  std::unique_ptr<Backend> backend = make_backend("cpu");
  VisionTransformer plain(config, *backend, 4, 7);
  config.drop_path_rate = 0.7f;
  VisionTransformer dropping(config, *backend, 4, 7);
  const Inputs in = make_inputs(config, 4, 11);
  ForwardContext train, evaluate;
  evaluate.training = false;
  EXPECT_EQ(mean_loss(dropping, in, evaluate), mean_loss(plain, in, evaluate));
  const double plain_loss = mean_loss(plain, in, train);
  std::vector<double> losses;
  for (int64_t step : {0, 1, 2}) {
    train.step = step;
    losses.push_back(mean_loss(dropping, in, train));
    EXPECT_NE(losses.back(), plain_loss) << "step " << step;
    EXPECT_EQ(mean_loss(dropping, in, train), losses.back()) << "step " << step;
  }
  EXPECT_NE(losses[0], losses[1]);
  EXPECT_NE(losses[1], losses[2]);
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, ModelGradientTest, ::testing::ValuesIn(kAllSchemes),
                         [](const auto& test_param) {
                           return attention_scheme_name(test_param.param);
                         });

TEST(ParamLayoutTest, NamesAndShapesFollowTheDesign) {
  ModelConfig c = tiny_config(AttentionScheme::kGQA);
  ParamLayout layout(c);
  const int64_t D = 16, kv = 2 * 4;  // G * d with d = D / H = 4
  auto shape = [&](const std::string& name) {
    const TensorSlot* slot = layout.find(name);
    EXPECT_NE(slot, nullptr) << name;
    return slot ? slot->shape : std::vector<int64_t>{};
  };
  EXPECT_EQ(shape("patch_embed.proj.weight"), (std::vector<int64_t>{D, 2, 4, 4}));
  EXPECT_EQ(shape("cls_token"), (std::vector<int64_t>{1, 1, D}));
  EXPECT_EQ(shape("pos_embed"), (std::vector<int64_t>{1, 5, D}));
  EXPECT_EQ(shape("blocks.1.attn.q.weight"), (std::vector<int64_t>{D, D}));
  EXPECT_EQ(shape("blocks.1.attn.k.weight"), (std::vector<int64_t>{kv, D}));
  EXPECT_EQ(shape("blocks.0.attn.v.bias"), (std::vector<int64_t>{kv}));
  EXPECT_EQ(shape("blocks.0.mlp.fc1.weight"), (std::vector<int64_t>{4 * D, D}));
  EXPECT_EQ(shape("blocks.0.mlp.fc2.weight"), (std::vector<int64_t>{D, 4 * D}));
  EXPECT_EQ(shape("head.weight"), (std::vector<int64_t>{3, D}));
  EXPECT_EQ(layout.find("blocks.2.norm1.weight"), nullptr);
  EXPECT_EQ(layout.tensors().size(), 4u + 16u * 2 + 4u);
  // Tensors do not overlap and stay inside the buffer.
  int64_t end = 0;
  for (const TensorSlot& slot : layout.tensors()) {
    EXPECT_GE(slot.offset, end) << slot.name;
    end = slot.offset + slot.size;
  }
  EXPECT_LE(end, layout.total_size());
}

TEST(ModelTest, GqaWithOneHeadPerGroupEqualsMha) {
  ModelConfig mha = tiny_config(AttentionScheme::kMHA);
  ModelConfig gqa = mha;
  gqa.attention = AttentionScheme::kGQA;
  std::unique_ptr<Backend> backend = make_backend("cpu");
  VisionTransformer a(mha, *backend, 2, 5), b(gqa, *backend, 2, 5);
  const Inputs in = make_inputs(mha, 2, 3);
  ForwardContext context;
  EXPECT_EQ(mean_loss(a, in, context), mean_loss(b, in, context));
  EXPECT_EQ(a.logits_to_host(), b.logits_to_host());
}

TEST(ModelTest, UnusedKvHeadGetsNoGradient) {
  // With G = 2, KDGQA's min-max step gives all H query heads to one K/V head.
  ModelConfig c = tiny_config(AttentionScheme::kKDGQA);
  std::unique_ptr<Backend> backend = make_backend("cpu");
  VisionTransformer model(c, *backend, 3, 9);
  const Inputs in = make_inputs(c, 3, 4);
  model.zero_grads();
  mean_loss(model, in, ForwardContext{});
  model.backward(1.f / 3);
  std::vector<float> grads(model.layout().total_size());
  backend->copy_to_host(grads.data(), model.grads(), grads.size() * sizeof(float));
  for (int l = 0; l < c.depth; ++l) {
    const std::vector<int>& allocation = model.allocators()[l].active_allocation();
    ASSERT_TRUE(allocation == (std::vector<int>{4, 0}) || allocation == (std::vector<int>{0, 4}));
    const int unused = allocation[0] == 0 ? 0 : 1;
    const int d = c.head_dim();
    const TensorSlot* k = model.layout().find("blocks." + std::to_string(l) + ".attn.k.weight");
    for (int row = unused * d; row < (unused + 1) * d; ++row) {
      for (int col = 0; col < c.embed_dim; ++col) {
        EXPECT_EQ(grads[k->offset + row * c.embed_dim + col], 0.f);
      }
    }
    const int used = 1 - unused;
    EXPECT_NE(grads[k->offset + used * d * c.embed_dim], 0.f);
  }
}

// The gradients of one forward and backward (scale 1/4) of the 4 images of `whole`.
std::vector<float> whole_batch_gradients(VisionTransformer& model, Backend& backend,
                                         const Inputs& whole, const ForwardContext& context) {
  LocalReducer reducer;
  model.zero_grads();
  model.forward(whole.images.data(), whole.labels.data(), 4, context, reducer);
  model.backward(0.25f);
  std::vector<float> grads(model.layout().total_size());
  backend.copy_to_host(grads.data(), model.grads(), grads.size() * sizeof(float));
  return grads;
}

TEST(ModelTest, GradientsOfSplitBatchesAddUp) {
  // Two halves of a batch, each backpropagated with scale 1/B, accumulate the gradient of the
  // whole batch: the property data-parallel training relies on.
  ModelConfig c = tiny_config(AttentionScheme::kGQA);
  std::unique_ptr<Backend> backend = make_backend("cpu");
  VisionTransformer model(c, *backend, 4, 2);
  const Inputs whole = make_inputs(c, 4, 8);
  const int64_t image = static_cast<int64_t>(c.in_channels) * c.image_size * c.image_size;
  LocalReducer reducer;
  ForwardContext context;

  const std::vector<float> expected = whole_batch_gradients(model, *backend, whole, context);

  model.zero_grads();
  for (int half = 0; half < 2; ++half) {
    model.forward(whole.images.data() + half * 2 * image, whole.labels.data() + half * 2, 2,
                  context, reducer);
    model.backward(0.25f);
  }
  std::vector<float> summed(model.layout().total_size());
  backend->copy_to_host(summed.data(), model.grads(), summed.size() * sizeof(float));
  for (size_t i = 0; i < summed.size(); ++i) {
    ASSERT_NEAR(summed[i], expected[i], 1e-5f + 1e-4f * std::fabs(expected[i])) << i;
  }
}

// Recomputing each block before its backward (train.recompute BLOCK) runs the same kernels on
// the same inputs: the losses, logits, allocations and gradients of a few training passes
// (steps 0-2, with DGQA's window of 1 moving its allocation, and PGQA's noise of each step), and
// an evaluation pass after them, are bit-identical to keeping every activation. Depth 3 leaves
// a block that is neither the first nor the last.
class RecomputeTest : public ::testing::TestWithParam<AttentionScheme> {};

TEST_P(RecomputeTest, RecomputedBlocksGiveTheSameBits) {
  ModelConfig c = tiny_config(GetParam());
  c.depth = 3;
  std::unique_ptr<Backend> backend = make_backend("cpu");
  VisionTransformer kept(c, *backend, 4, 5), recomputed(c, *backend, 4, 5, /*recompute=*/true);
  LocalReducer reducer;
  for (int step = 0; step < 3; ++step) {
    const Inputs in = make_inputs(c, 4, 20 + step);
    ForwardContext context;
    context.step = step;
    std::vector<std::vector<float>> grads;
    for (VisionTransformer* model : {&kept, &recomputed}) {
      model->zero_grads();
      model->forward(in.images.data(), in.labels.data(), in.batch, context, reducer);
      model->backward(0.25f);
      grads.push_back(std::vector<float>(model->layout().total_size()));
      backend->copy_to_host(grads.back().data(), model->grads(), grads.back().size() * 4);
    }
    EXPECT_EQ(recomputed.logits_to_host(), kept.logits_to_host()) << "step " << step;
    EXPECT_EQ(allocations(recomputed), allocations(kept)) << "step " << step;
    EXPECT_TRUE(grads[1] == grads[0]) << "step " << step;
  }
  ForwardContext evaluation;
  evaluation.training = false;
  const Inputs in = make_inputs(c, 3, 30);
  EXPECT_EQ(mean_loss(recomputed, in, evaluation), mean_loss(kept, in, evaluation));
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, RecomputeTest, ::testing::ValuesIn(kAllSchemes));

// With drop path, two ranks' strided halves of a batch (images 0, 2 and 1, 3, each told its
// images' places in the global batch) draw the whole batch's masks: their gradients add up to
// the whole batch's, and differ from it when the halves are told the wrong places.
TEST(ModelTest, DropPathMasksFollowTheGlobalImage) {
  ModelConfig c = tiny_config(AttentionScheme::kGQA);
  c.depth = 3;
  c.drop_path_rate = 0.7f;
  std::unique_ptr<Backend> backend = make_backend("cpu");
  VisionTransformer model(c, *backend, 4, 2);
  const Inputs whole = make_inputs(c, 4, 8);
  const int64_t image = static_cast<int64_t>(c.in_channels) * c.image_size * c.image_size;
  LocalReducer reducer;
  ForwardContext context;
  context.step = 3;

  auto gradients = [&](int64_t stride) {
    model.zero_grads();
    for (int rank = 0; rank < 2; ++rank) {
      std::vector<float> images;
      std::vector<int32_t> labels;
      for (int b = rank; b < 4; b += 2) {
        images.insert(images.end(), whole.images.begin() + b * image,
                      whole.images.begin() + (b + 1) * image);
        labels.push_back(whole.labels[b]);
      }
      context.sample_first = rank * (stride == 2 ? 1 : 2);  // right places, or 0,1 and 2,3
      context.sample_stride = stride;
      model.forward(images.data(), labels.data(), 2, context, reducer);
      model.backward(0.25f);
    }
    std::vector<float> grads(model.layout().total_size());
    backend->copy_to_host(grads.data(), model.grads(), grads.size() * sizeof(float));
    return grads;
  };
  const std::vector<float> expected = whole_batch_gradients(model, *backend, whole, context);

  const std::vector<float> summed = gradients(2);
  for (size_t i = 0; i < summed.size(); ++i) {
    ASSERT_NEAR(summed[i], expected[i], 1e-5f + 1e-4f * std::fabs(expected[i])) << i;
  }
  const std::vector<float> misplaced = gradients(1);
  double largest = 0;
  for (size_t i = 0; i < misplaced.size(); ++i) {
    largest = std::max(largest, double{std::fabs(misplaced[i] - expected[i])});
  }
  EXPECT_GT(largest, 1e-3) << "the masks do not depend on the image's place";
}

TEST(ModelTest, InitialisationDependsOnlyOnTheSeed) {
  ModelConfig c = tiny_config(AttentionScheme::kGQA);
  std::unique_ptr<Backend> backend = make_backend("cpu");
  VisionTransformer a(c, *backend, 1, 42), b(c, *backend, 1, 42), other(c, *backend, 1, 43);
  EXPECT_EQ(a.params_to_host(), b.params_to_host());
  EXPECT_NE(a.params_to_host(), other.params_to_host());
  // LayerNorm weights start at 1 and biases at 0; weights are within two standard deviations.
  const std::vector<float> p = a.params_to_host();
  EXPECT_EQ(p[a.layout().find("norm.weight")->offset], 1.f);
  EXPECT_EQ(p[a.layout().find("head.bias")->offset], 0.f);
  const TensorSlot* fc1 = a.layout().find("blocks.0.mlp.fc1.weight");
  for (int64_t i = 0; i < fc1->size; ++i) EXPECT_LE(std::fabs(p[fc1->offset + i]), 2 * c.init_std);
}

}  // namespace
}  // namespace dgqa
