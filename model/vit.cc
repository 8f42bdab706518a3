#include "model/vit.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "common/philox.h"
#include "model/allocation.h"

namespace dgqa {
namespace {

constexpr float kLayerNormEps = 1e-6f;
// Step number of the PGQA noise stream at evaluation: fixed, so evaluation is repeatable and
// independent of batch size (training steps never reach it).
constexpr uint32_t kEvalNoiseStep = 0xFFFFFFFFu;
// Counter word that separates the initialisation stream from every other use of the seed.
constexpr uint32_t kInitStreamTag = 0x1A171A17u;
// Drop path's counter word c2 is this tag | layer (docs/design.md §3.6).
constexpr uint32_t kDropPathLayerTag = 0x40000000u;

}  // namespace

// Activations kept for the backward pass, and the backward pass's scratch space.
struct VisionTransformer::Buffers {
  struct Layer {
    float *ln1, *ln1_mean, *ln1_rstd, *q, *k, *v, *probs, *attn, *noisy, *noise_stats, *noise;
    float *resid_mid, *ln2, *ln2_mean, *ln2_rstd, *fc1, *gelu;
    int* kv_head;
  };
  Backend* backend = nullptr;
  void* memory = nullptr;
  float *images, *cols, *patches, *cls, *lnf, *lnf_mean, *lnf_rstd, *logits, *ce_probs, *losses;
  // The last block's class-token rows: its attention output and its input (see forward).
  float *cls_attn, *cls_resid;
  float* key_norms;
  float* drop_scales;  // drop path: (depth, 2, B) per-image scales of each block's two branches
  int* labels;
  int* mix_labels;            // Mixup/CutMix: each image's second label
  float* mix_weights;         // and its own label's weight
  std::vector<float*> resid;  // each block's input; resid[0] is the token sequence
  std::vector<Layer> layers;
  // backward scratch, reused by every layer
  float *d_resid, *d_ln, *d_attn_out, *d_attn, *d_q, *d_k, *d_v, *d_fc1, *d_gelu;
  float *d_logits, *d_lnf, *d_cls, *d_cls_attn, *d_patches;
  float* d_branch;  // drop path: a branch's output gradient, scaled

  ~Buffers() {
    if (memory != nullptr) backend->release(memory);
  }
};

VisionTransformer::VisionTransformer(const ModelConfig& config, Backend& backend, int max_batch,
                                     uint64_t seed, bool recompute)
    : config_(config),
      backend_(backend),
      layout_(config),
      max_batch_(max_batch),
      seed_(seed),
      recompute_(recompute),
      buffers_(std::make_unique<Buffers>()) {
  const int64_t B = max_batch, T = config.num_tokens(), N = config.num_patches();
  const int64_t D = config.embed_dim, F = config.mlp_dim(), H = config.num_heads;
  const int64_t G = config.num_kv_heads, d = config.head_dim(), K = config.num_classes;
  const int64_t C = config.in_channels, S = config.image_size, p = config.patch_size;
  const bool pgqa = config.attention == AttentionScheme::kPGQA;
  const bool drop_path = config.drop_path_rate > 0;

  params_ = allocate_floats(layout_.total_size());
  grads_ = allocate_floats(layout_.total_size());
  backend_.set_parameters(params_.get(), layout_.total_size());
  for (int i = 0; i < config.depth; ++i) allocators_.emplace_back(config, i, seed);

  // Every buffer is a region of one backend allocation, so a forward pass never allocates:
  // list the regions, then lay them out (16-float aligned) and set the pointers.
  Buffers& b = *buffers_;
  std::vector<std::pair<float**, int64_t>> regions;
  auto region = [&](float** pointer, int64_t floats) { regions.push_back({pointer, floats}); };
  region(&b.images, B * C * S * S);
  region(&b.cols, B * N * C * p * p);
  region(&b.patches, B * N * D);
  region(&b.cls, B * D);
  region(&b.cls_attn, B * D);
  region(&b.cls_resid, B * D);
  region(&b.lnf, B * D);
  region(&b.lnf_mean, B);
  region(&b.lnf_rstd, B);
  region(&b.logits, B * K);
  region(&b.ce_probs, B * K);
  region(&b.losses, B);
  region(&b.key_norms, G);
  region(&b.drop_scales, drop_path ? config.depth * 2 * B : 0);
  region(reinterpret_cast<float**>(&b.labels), B);  // int32 and float have the same size
  region(reinterpret_cast<float**>(&b.mix_labels), B);
  region(&b.mix_weights, B);
  b.resid.resize(config.depth);
  for (float*& stream : b.resid) region(&stream, B * T * D);
  b.layers.resize(config.depth);
  for (Buffers::Layer& L : b.layers) {
    // The allocation and the noise of each layer outlive its activations: a recomputed block
    // reuses them.
    region(reinterpret_cast<float**>(&L.kv_head), H);
    region(&L.noise, pgqa ? H * T * d : 0);
    if (recompute && &L != &b.layers.front()) continue;  // shares the first layer's activations
    // After attention, the last block keeps its class-token rows only (see forward).
    const int64_t rows = &L == &b.layers.back() && !recompute ? B : B * T;
    region(&L.ln1, B * T * D);
    region(&L.ln1_mean, B * T);
    region(&L.ln1_rstd, B * T);
    region(&L.q, B * T * D);
    region(&L.k, B * T * G * d);
    region(&L.v, B * T * G * d);
    region(&L.probs, B * H * T * T);
    region(&L.attn, B * T * D);
    region(&L.noisy, pgqa ? B * T * D : 0);
    region(&L.noise_stats, pgqa ? B * H * 2 : 0);
    region(&L.resid_mid, rows * D);
    region(&L.ln2, rows * D);
    region(&L.ln2_mean, rows);
    region(&L.ln2_rstd, rows);
    region(&L.fc1, rows * F);
    region(&L.gelu, rows * F);
  }
  for (float** scratch : {&b.d_resid, &b.d_ln, &b.d_attn_out, &b.d_attn, &b.d_q})
    region(scratch, B * T * D);
  region(&b.d_k, B * T * G * d);
  region(&b.d_v, B * T * G * d);
  region(&b.d_fc1, B * T * F);
  region(&b.d_gelu, B * T * F);
  region(&b.d_logits, B * K);
  region(&b.d_lnf, B * D);
  region(&b.d_cls, B * D);
  region(&b.d_cls_attn, B * D);
  region(&b.d_patches, B * N * D);
  region(&b.d_branch, drop_path ? B * T * D : 0);

  std::vector<int64_t> offsets;
  int64_t total = 0;
  for (const auto& r : regions) {
    offsets.push_back(total);
    total += (r.second + 15) / 16 * 16;
  }
  b.backend = &backend_;
  b.memory = backend_.allocate(total * sizeof(float));
  float* base = static_cast<float*>(b.memory);
  for (size_t i = 0; i < regions.size(); ++i) {
    *regions[i].first = regions[i].second > 0 ? base + offsets[i] : nullptr;
  }
  for (Buffers::Layer& L : b.layers) {
    if (!recompute || &L == &b.layers.front()) continue;
    Buffers::Layer shared = b.layers.front();
    shared.kv_head = L.kv_head;
    shared.noise = L.noise;
    L = shared;
  }
  init_params(seed);
}

// Members go in reverse order: the activation buffers, then grads_ and params_.
VisionTransformer::~VisionTransformer() = default;

VisionTransformer::BackendFloats VisionTransformer::allocate_floats(int64_t count) {
  void* memory = backend_.allocate(static_cast<size_t>(count) * sizeof(float));
  return BackendFloats(static_cast<float*>(memory), BackendRelease{&backend_});
}

void VisionTransformer::zero_grads() {
  backend_.zero(grads_.get(), layout_.total_size() * sizeof(float));
}

void VisionTransformer::init_params(uint64_t seed) {
  // Box-Muller normals from the Philox stream (seed, tensor index); truncated at 2 std as
  // timm's trunc_normal_ (resampling a value outside the bounds).
  std::vector<float> host(layout_.total_size(), 0.f);
  const auto& tensors = layout_.tensors();
  for (size_t t = 0; t < tensors.size(); ++t) {
    const TensorSlot& slot = tensors[t];
    const std::string& name = slot.name;
    const bool is_norm = name.find("norm") != std::string::npos;
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    float std_dev = config_.init_std;
    if (is_bias) continue;  // zeros
    if (is_norm) {          // LayerNorm weights are 1
      for (int64_t i = 0; i < slot.size; ++i) host[slot.offset + i] = 1.f;
      continue;
    }
    if (name == "cls_token") std_dev = 1e-6f;
    uint64_t draw = 0;
    for (int64_t i = 0; i < slot.size; ++i) {
      float value;
      do {
        float u1 = philox_uniform_at(seed, kInitStreamTag, static_cast<uint32_t>(t), 0, draw++);
        float u2 = philox_uniform_at(seed, kInitStreamTag, static_cast<uint32_t>(t), 0, draw++);
        value =
            static_cast<float>(std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * M_PI * u2));
      } while (std::fabs(value) > 2.f);
      host[slot.offset + i] = value * std_dev;
    }
  }
  params_from_host(host);
}

std::vector<float> VisionTransformer::params_to_host() const {
  std::vector<float> host(layout_.total_size());
  backend_.copy_to_host(host.data(), params_.get(), host.size() * sizeof(float));
  return host;
}

void VisionTransformer::params_from_host(const std::vector<float>& values) {
  backend_.copy_to_device(params_.get(), values.data(), values.size() * sizeof(float));
}

std::vector<float> VisionTransformer::logits_to_host() const {
  std::vector<float> host(static_cast<size_t>(last_batch_) * config_.num_classes);
  backend_.copy_to_host(host.data(), buffers_->logits, host.size() * sizeof(float));
  return host;
}

void VisionTransformer::choose_allocation(int layer, const float* k, int B,
                                          const ForwardContext& context, Reducer& reducer) {
  GroupAllocator& allocator = allocators_[layer];
  const int G = config_.num_kv_heads;
  std::vector<float> norms;
  if (allocator.needs_key_norms(context)) {
    norms.assign(G, 0.f);
    if (B > 0) {
      backend_.key_norms(buffers_->key_norms, k, B, config_.num_tokens(), G, config_.head_dim());
    } else {  // a rank without examples adds nothing to the sum
      backend_.zero(buffers_->key_norms, G * sizeof(float));
    }
    // The global batch's norms: every rank agrees on them, so on the allocation and the cache.
    reducer.sum_to_host(backend_, buffers_->key_norms, G, norms.data());
    for (float norm : norms) {
      if (!std::isfinite(norm)) {
        throw std::runtime_error("the training diverged: the key norms of layer " +
                                 std::to_string(layer) + " are not finite");
      }
    }
  }
  allocator.choose(context, norms);
  const std::vector<int> kv_head = kv_head_map(allocator.active_allocation());
  backend_.copy_to_device(buffers_->layers[layer].kv_head, kv_head.data(),
                          kv_head.size() * sizeof(int));
}

// After attention every token's row is computed on its own, and only the class token of the
// last block reaches the head: that block's projection, MLP and residuals run on its B
// class-token rows (b.cls receives its output), not on all B*T.
void VisionTransformer::block_forward(int l, int B, const ForwardContext* context,
                                      Reducer* reducer) {
  const ModelConfig& c = config_;
  const int T = c.num_tokens(), D = c.embed_dim, F = c.mlp_dim();
  const int H = c.num_heads, G = c.num_kv_heads, d = c.head_dim(), BT = B * T;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  const BlockSlots& w = layout_.blocks[l];
  Buffers& b = *buffers_;
  Buffers::Layer& L = b.layers[l];
  Backend& be = backend_;
  be.layernorm_forward(L.ln1, L.ln1_mean, L.ln1_rstd, b.resid[l], param(w.norm1_w),
                       param(w.norm1_b), BT, D, kLayerNormEps);
  be.matmul_forward(L.q, L.ln1, param(w.q_w), param(w.q_b), BT, D, D);
  be.matmul_forward(L.k, L.ln1, param(w.k_w), param(w.k_b), BT, D, G * d);
  be.matmul_forward(L.v, L.ln1, param(w.v_w), param(w.v_b), BT, D, G * d);
  if (context != nullptr) choose_allocation(l, L.k, B, *context, *reducer);
  be.attention_forward(L.attn, L.probs, L.q, L.k, L.v, L.kv_head, B, T, H, G, d, scale);
  const float* attn_out = L.attn;
  if (last_noise_) {
    if (context != nullptr) {
      const uint32_t step =
          context->training ? static_cast<uint32_t>(context->step) : kEvalNoiseStep;
      be.pgqa_make_noise(L.noise, seed_, step, static_cast<uint32_t>(l), H, G, T, d);
    }
    be.pgqa_noise_forward(L.noisy, L.noise_stats, L.attn, L.noise, B, T, H, G, d);
    attn_out = L.noisy;
  }
  const bool last = l == c.depth - 1;
  const int rows = last ? B : BT;
  const float* block_in = b.resid[l];
  float* block_out = last ? b.cls : b.resid[l + 1];
  if (last) {
    be.gather_cls_forward(b.cls_attn, attn_out, B, T, D);
    be.gather_cls_forward(b.cls_resid, b.resid[l], B, T, D);
    attn_out = b.cls_attn;
    block_in = b.cls_resid;
  }
  const int64_t per_image = static_cast<int64_t>(rows / B) * D;  // a branch output's floats
  be.matmul_forward(L.resid_mid, attn_out, param(w.proj_w), param(w.proj_b), rows, D, D);
  if (last_drop_path_) be.scale_samples(L.resid_mid, L.resid_mid, drop_scales(l, 0), B, per_image);
  be.add_inplace(L.resid_mid, block_in, static_cast<int64_t>(rows) * D);
  be.layernorm_forward(L.ln2, L.ln2_mean, L.ln2_rstd, L.resid_mid, param(w.norm2_w),
                       param(w.norm2_b), rows, D, kLayerNormEps);
  be.matmul_forward(L.fc1, L.ln2, param(w.fc1_w), param(w.fc1_b), rows, D, F);
  be.gelu_forward(L.gelu, L.fc1, static_cast<int64_t>(rows) * F);
  if (context == nullptr) return;  // a recomputation: backward needs no block output
  be.matmul_forward(block_out, L.gelu, param(w.fc2_w), param(w.fc2_b), rows, F, D);
  if (last_drop_path_) be.scale_samples(block_out, block_out, drop_scales(l, 1), B, per_image);
  be.add_inplace(block_out, L.resid_mid, static_cast<int64_t>(rows) * D);
}

// Drop path's per-image scales (docs/design.md §3.6): image i of the pass is image
// j = sample_first + i * sample_stride of the global batch; branch r of block l keeps it when
// U(seed, step, kDropPathLayerTag | l, r, j) < 1 - rate_l, and then scales it by 1 / (1 - rate_l).
void VisionTransformer::draw_drop_path(int B, const ForwardContext& context) {
  const int depth = config_.depth;
  const uint32_t step = static_cast<uint32_t>(context.step);
  std::vector<float> scales(static_cast<size_t>(depth) * 2 * B);
  for (int l = 0; l < depth; ++l) {
    const double rate = depth > 1 ? double{config_.drop_path_rate} * l / (depth - 1) : 0.0;
    const double keep = 1.0 - rate;
    const float kept_scale = static_cast<float>(1.0 / keep);
    for (uint32_t branch = 0; branch < 2; ++branch) {
      for (int i = 0; i < B; ++i) {
        const uint64_t sample = context.sample_first + i * context.sample_stride;
        const float u = philox_uniform_at(seed_, step, kDropPathLayerTag | static_cast<uint32_t>(l),
                                          branch, sample);
        scales[(l * 2 + branch) * B + i] = u < keep ? kept_scale : 0.f;
      }
    }
  }
  backend_.copy_to_device(buffers_->drop_scales, scales.data(), sizeof(float) * scales.size());
}

const float* VisionTransformer::drop_scales(int layer, int branch) const {
  return buffers_->drop_scales + static_cast<int64_t>(layer * 2 + branch) * last_batch_;
}

double VisionTransformer::forward(const float* images, const int32_t* labels, int B,
                                  const ForwardContext& context, Reducer& reducer) {
  const ModelConfig& c = config_;
  const int N = c.num_patches(), D = c.embed_dim, K = c.num_classes;
  const int C = c.in_channels, S = c.image_size, p = c.patch_size;
  Buffers& b = *buffers_;
  Backend& be = backend_;
  if (B < 0 || B > max_batch_) {
    throw std::invalid_argument("forward: batch " + std::to_string(B) + " outside [0, " +
                                std::to_string(max_batch_) + "]");
  }
  last_batch_ = B;
  if (B == 0) {
    for (int l = 0; l < c.depth; ++l) choose_allocation(l, nullptr, 0, context, reducer);
    return 0.0;
  }
  last_noise_ = c.attention == AttentionScheme::kPGQA && (context.training || c.pgqa_eval_noise);
  last_drop_path_ = context.training && c.drop_path_rate > 0;
  if (last_drop_path_) draw_drop_path(B, context);

  be.copy_to_device(b.images, images, sizeof(float) * B * C * S * S);
  be.copy_to_device(b.labels, labels, sizeof(int32_t) * B);
  be.im2col_patches(b.cols, b.images, B, C, S, p);
  be.matmul_forward(b.patches, b.cols, param(layout_.patch_w), param(layout_.patch_b), B * N,
                    C * p * p, D);
  be.tokens_forward(b.resid[0], b.patches, param(layout_.cls_token), param(layout_.pos_embed), B, N,
                    D);

  for (int l = 0; l < c.depth; ++l) block_forward(l, B, &context, &reducer);

  // The final LayerNorm and the head, on the class tokens.
  be.layernorm_forward(b.lnf, b.lnf_mean, b.lnf_rstd, b.cls, param(layout_.norm_w),
                       param(layout_.norm_b), B, D, kLayerNormEps);
  be.matmul_forward(b.logits, b.lnf, param(layout_.head_w), param(layout_.head_b), B, D, K);
  last_smoothing_ = context.label_smoothing;
  last_mixed_ = context.mix_weights != nullptr;
  if (last_mixed_) {
    be.copy_to_device(b.mix_labels, context.mix_labels, sizeof(int32_t) * B);
    be.copy_to_device(b.mix_weights, context.mix_weights, sizeof(float) * B);
  }
  return be.softmax_cross_entropy_forward(
      b.ce_probs, b.losses, b.logits, b.labels, last_mixed_ ? b.mix_labels : nullptr,
      last_mixed_ ? b.mix_weights : nullptr, B, K, last_smoothing_);
}

void VisionTransformer::backward(float loss_scale, const GradientsReady& on_ready) {
  const ModelConfig& c = config_;
  const int B = last_batch_, T = c.num_tokens(), N = c.num_patches(), D = c.embed_dim;
  const int F = c.mlp_dim(), H = c.num_heads, G = c.num_kv_heads, d = c.head_dim();
  const int K = c.num_classes, C = c.in_channels, p = c.patch_size, BT = B * T;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  const size_t btd_bytes = sizeof(float) * BT * D, btkv_bytes = sizeof(float) * BT * G * d;
  Buffers& b = *buffers_;
  Backend& be = backend_;

  // Head: loss -> logits -> final LayerNorm -> class token.
  be.zero(b.d_logits, sizeof(float) * B * K);
  be.softmax_cross_entropy_backward(
      b.d_logits, b.ce_probs, b.labels, last_mixed_ ? b.mix_labels : nullptr,
      last_mixed_ ? b.mix_weights : nullptr, B, K, loss_scale, last_smoothing_);
  be.zero(b.d_lnf, sizeof(float) * B * D);
  be.matmul_backward(b.d_lnf, grad(layout_.head_w), grad(layout_.head_b), b.d_logits, b.lnf,
                     param(layout_.head_w), B, D, K);
  be.zero(b.d_cls, sizeof(float) * B * D);
  be.layernorm_backward(b.d_cls, grad(layout_.norm_w), grad(layout_.norm_b), b.d_lnf, b.cls,
                        param(layout_.norm_w), b.lnf_mean, b.lnf_rstd, B, D);
  if (on_ready) on_ready(layout_.norm_w);  // the final norm and the head follow every block

  // Blocks in reverse. d_resid holds dLoss/d(residual stream) and receives each branch's
  // input gradient by accumulation, which is how the residual connections backpropagate. The
  // last block's projection and MLP ran on the class-token rows only (see forward): there,
  // d_cls plays d_resid's part until the attention, whose input gradient is scattered back to
  // the class-token rows of the full-size buffers.
  for (int l = c.depth - 1; l >= 0; --l) {
    const BlockSlots& w = layout_.blocks[l];
    Buffers::Layer& L = b.layers[l];
    const bool last = l == c.depth - 1;
    // The shared activations still hold the last block's from the forward pass.
    if (recompute_ && !last) block_forward(l, B, nullptr, nullptr);
    const int rows = last ? B : BT;
    const size_t row_bytes = sizeof(float) * rows * D;
    float* d_block_out = last ? b.d_cls : b.d_resid;
    // With drop path, each branch's output gradient is d_block_out scaled as in the forward.
    const int64_t per_image = static_cast<int64_t>(rows / B) * D;
    auto branch_gradient = [&](int branch) -> const float* {
      if (!last_drop_path_) return d_block_out;
      be.scale_samples(b.d_branch, d_block_out, drop_scales(l, branch), B, per_image);
      return b.d_branch;
    };
    be.zero(b.d_gelu, sizeof(float) * rows * F);
    be.matmul_backward(b.d_gelu, grad(w.fc2_w), grad(w.fc2_b), branch_gradient(1), L.gelu,
                       param(w.fc2_w), rows, F, D);
    be.zero(b.d_fc1, sizeof(float) * rows * F);
    be.gelu_backward(b.d_fc1, L.fc1, b.d_gelu, static_cast<int64_t>(rows) * F);
    be.zero(b.d_ln, row_bytes);
    be.matmul_backward(b.d_ln, grad(w.fc1_w), grad(w.fc1_b), b.d_fc1, L.ln2, param(w.fc1_w), rows,
                       D, F);
    be.layernorm_backward(d_block_out, grad(w.norm2_w), grad(w.norm2_b), b.d_ln, L.resid_mid,
                          param(w.norm2_w), L.ln2_mean, L.ln2_rstd, rows, D);

    const float* attn_out = last ? b.cls_attn : (last_noise_ ? L.noisy : L.attn);
    float* d_proj_in = last ? b.d_cls_attn : b.d_attn_out;
    be.zero(d_proj_in, row_bytes);
    be.matmul_backward(d_proj_in, grad(w.proj_w), grad(w.proj_b), branch_gradient(0), attn_out,
                       param(w.proj_w), rows, D, D);
    if (last) {
      be.zero(b.d_attn_out, btd_bytes);
      be.gather_cls_backward(b.d_attn_out, b.d_cls_attn, B, T, D);
      be.zero(b.d_resid, btd_bytes);
      be.gather_cls_backward(b.d_resid, b.d_cls, B, T, D);
    }
    float* d_attn = b.d_attn_out;
    if (last_noise_) {
      be.zero(b.d_attn, btd_bytes);
      be.pgqa_noise_backward(b.d_attn, b.d_attn_out, L.attn, L.noise_stats, L.noise, B, T, H, G, d);
      d_attn = b.d_attn;
    }
    be.zero(b.d_q, btd_bytes);
    be.zero(b.d_k, btkv_bytes);
    be.zero(b.d_v, btkv_bytes);
    be.attention_backward(b.d_q, b.d_k, b.d_v, d_attn, L.q, L.k, L.v, L.probs, L.kv_head, B, T, H,
                          G, d, scale);
    be.zero(b.d_ln, btd_bytes);
    be.matmul_backward(b.d_ln, grad(w.q_w), grad(w.q_b), b.d_q, L.ln1, param(w.q_w), BT, D, D);
    be.matmul_backward(b.d_ln, grad(w.k_w), grad(w.k_b), b.d_k, L.ln1, param(w.k_w), BT, D, G * d);
    be.matmul_backward(b.d_ln, grad(w.v_w), grad(w.v_b), b.d_v, L.ln1, param(w.v_w), BT, D, G * d);
    be.layernorm_backward(b.d_resid, grad(w.norm1_w), grad(w.norm1_b), b.d_ln, b.resid[l],
                          param(w.norm1_w), L.ln1_mean, L.ln1_rstd, BT, D);
    if (on_ready) on_ready(w.norm1_w);  // norm1 is the block's first tensor
  }

  // Tokens and patch embedding (the images need no gradient).
  be.zero(b.d_patches, sizeof(float) * B * N * D);
  be.tokens_backward(b.d_patches, grad(layout_.cls_token), grad(layout_.pos_embed), b.d_resid, B, N,
                     D);
  be.matmul_backward(nullptr, grad(layout_.patch_w), grad(layout_.patch_b), b.d_patches, b.cols,
                     param(layout_.patch_w), B * N, C * p * p, D);
  if (on_ready) on_ready(0);
}

}  // namespace dgqa
