#include "io/weights.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "common/error.h"
#include "io/pos_embed.h"
#include "io/timm_import.h"

namespace dgqa {
namespace {

std::string cache_name(int layer) {
  return "blocks." + std::to_string(layer) + ".attn.cache";
}
std::string allocation_name(int layer) {
  return "blocks." + std::to_string(layer) + ".attn.allocation";
}

// The parameters of a file in our layout. Its other tensors may only be DGQA state, which
// load_dgqa_state reads.
FloatTensors read_our_layout(const SafetensorsFile& file, const VisionTransformer& model) {
  std::set<std::string> state;
  for (int l = 0; l < model.config().depth; ++l) {
    state.insert(cache_name(l));
    state.insert(allocation_name(l));
  }
  FloatTensors tensors;
  for (const std::string& name : file.names()) {
    if (model.layout().find(name) != nullptr) {
      tensors[name] = {file.get(name).shape, file.as_f32(name)};
    } else if (state.count(name) == 0) {
      throw InputError(file.path() + ": unexpected tensor " + name + " (not part of this model)");
    }
  }
  return tensors;
}

// Whether the tensors hold a whole head for another number of classes, with the model's D:
// weights pretrained on another dataset, to be fine-tuned with a new head.
bool head_for_other_classes(const FloatTensors& tensors, const ModelConfig& config) {
  const auto weight = tensors.find("head.weight");
  const auto bias = tensors.find("head.bias");
  if (weight == tensors.end() || bias == tensors.end()) return false;
  const std::vector<int64_t>& shape = weight->second.shape;
  return shape.size() == 2 && shape[1] == config.embed_dim && shape[0] != config.num_classes &&
         bias->second.shape == std::vector<int64_t>{shape[0]};
}

// Copies each tensor into its slot of the flat buffer `params`. Every slot needs a tensor of its
// shape, except the head's when the file's head is for another number of classes and the
// policy allows a new head: those slots keep their values.
void copy_into_params(const FloatTensors& tensors, const VisionTransformer& model,
                      const std::string& path, OtherHead other_head, std::vector<float>& params) {
  const bool new_head =
      other_head == OtherHead::kReinitialise && head_for_other_classes(tensors, model.config());
  if (new_head) {
    LOG(WARNING) << "head.weight has shape " << shape_text(tensors.at("head.weight").shape)
                 << " in " << path << ", the model has "
                 << shape_text(model.layout().find("head.weight")->shape)
                 << ": the head is re-initialised";
  }
  for (const TensorSlot& slot : model.layout().tensors()) {
    if (new_head && (slot.name == "head.weight" || slot.name == "head.bias")) continue;
    const auto tensor = tensors.find(slot.name);
    if (tensor == tensors.end()) {
      throw InputError(path + ": missing tensor " + slot.name + " " + shape_text(slot.shape));
    }
    const std::vector<int64_t>& shape = tensor->second.shape;
    if (shape != slot.shape) {
      std::string message = path + ": tensor " + slot.name + " has shape " + shape_text(shape) +
                            ", the model needs " + shape_text(slot.shape);
      if (slot.name == "pos_embed" && shape.size() == 3 && shape[2] == slot.shape[2]) {
        message +=
            " (weights for another image size: only --init-from and dgqa convert resample "
            "position embeddings to the model's grid)";
      }
      throw InputError(message);
    }
    std::copy(tensor->second.values.begin(), tensor->second.values.end(),
              params.begin() + slot.offset);
  }
}

// The side of the square patch grid of a pos_embed shape (1, 1 + side^2, D).
int64_t grid_side(const std::vector<int64_t>& shape) {
  return std::llround(std::sqrt(static_cast<double>(shape[1] - 1)));
}

// Replaces a pos_embed for another patch grid than the model's by its resampling.
void fit_pos_embed(FloatTensors& tensors, const VisionTransformer& model, const std::string& path) {
  const auto found = tensors.find("pos_embed");
  const std::vector<int64_t>& shape = model.layout().find("pos_embed")->shape;
  if (found == tensors.end() || found->second.shape == shape) return;
  FloatTensor resampled = resample_pos_embed(found->second, shape, path);
  const int64_t from = grid_side(found->second.shape), to = grid_side(shape);
  LOG(INFO) << "Resampled pos_embed of " << path << " from the " << from << "x" << from
            << " patch grid to " << to << "x" << to
            << " (bicubic, antialiased as timm's; the class token kept)";
  found->second = std::move(resampled);
}

// Gives each layer of a DGQA model the cache and allocation the file holds, if it holds them.
void load_dgqa_state(const SafetensorsFile& file, VisionTransformer& model) {
  const std::string& path = file.path();
  const int depth = model.config().depth;
  const int64_t G = model.config().num_kv_heads;
  bool has_state = false;
  for (int l = 0; l < depth; ++l) {
    for (const std::string& name : {cache_name(l), allocation_name(l)}) {
      if (!file.has(name)) continue;
      has_state = true;
      if (file.get(name).shape != std::vector<int64_t>{G}) {
        throw InputError(path + ": tensor " + name + " has shape " +
                         shape_text(file.get(name).shape) + ", the model needs (" +
                         std::to_string(G) + ")");
      }
    }
  }
  if (!has_state) return;
  if (!has_dgqa_state(model.config().attention)) {
    LOG(INFO) << path << " holds DGQA state, which "
              << attention_scheme_name(model.config().attention) << " does not use";
    return;
  }
  for (int l = 0; l < depth; ++l) {
    if (!file.has(cache_name(l)) || !file.has(allocation_name(l))) {
      throw InputError(path + ": DGQA state of layer " + std::to_string(l) +
                       " is incomplete (needs " + cache_name(l) + " and " + allocation_name(l) +
                       ")");
    }
    const std::vector<float> cache = file.as_f32(cache_name(l));
    check_finite(cache, path, cache_name(l));
    try {
      model.allocators()[l].set_state(cache, file.as_i64(allocation_name(l)));
    } catch (const InputError& error) {
      throw InputError(path + ": tensor " + allocation_name(l) + ": " + error.what());
    }
  }
  LOG(INFO) << "Loaded the DGQA cache and allocation of every layer from " << path;
}

// The shape of tensor `name` of a file that should hold a ViT: `rank` positive extents, each
// small enough for the model's int fields.
std::vector<int64_t> vit_tensor_shape(const SafetensorsFile& file, const std::string& name,
                                      size_t rank) {
  if (!file.has(name)) {
    throw InputError(file.path() + ": not the weights of a ViT: it has no tensor " + name);
  }
  const std::vector<int64_t>& shape = file.get(name).shape;
  const bool fits = std::all_of(shape.begin(), shape.end(), [](int64_t extent) {
    return extent > 0 && extent <= std::numeric_limits<int>::max();
  });
  if (shape.size() != rank || !fits) {
    throw InputError(file.path() + ": not the weights of a ViT: tensor " + name + " has shape " +
                     shape_text(shape));
  }
  return shape;
}

// The image side: pos_embed holds the class token and a square of patches.
int image_size_of(const SafetensorsFile& file, int patch_size, int64_t embed_dim) {
  const std::vector<int64_t> pos = vit_tensor_shape(file, "pos_embed", 3);
  const int64_t patches = pos[1] - 1;
  const int64_t side = std::llround(std::sqrt(static_cast<double>(patches)));
  if (pos[0] != 1 || pos[2] != embed_dim || patches < 1 || side * side != patches) {
    throw InputError(file.path() + ": not the weights of a ViT: pos_embed has shape " +
                     shape_text(pos) + ", not (1, 1 + a square number of patches, D)");
  }
  return static_cast<int>(side * patch_size);
}

// The recorded scheme: the metadata dgqa_attention of a file dgqa wrote.
bool scheme_of(const SafetensorsFile& file, AttentionScheme* scheme) {
  const auto recorded = file.metadata().find("dgqa_attention");
  if (recorded == file.metadata().end()) return false;
  for (AttentionScheme candidate :
       {AttentionScheme::kMHA, AttentionScheme::kGQA, AttentionScheme::kKDGQA,
        AttentionScheme::kDGQA_DIFF, AttentionScheme::kDGQA_EMA, AttentionScheme::kPGQA}) {
    if (recorded->second == attention_scheme_name(candidate)) {
      *scheme = candidate;
      return true;
    }
  }
  return false;
}

// H and G from the first layer's DGQA allocation, when it has G counts summing to an H that
// divides D and gives the recorded K/V width.
void heads_from_allocation(const SafetensorsFile& file, WeightsShape& shape) {
  const std::string name = allocation_name(0);
  if (!file.has(name) || file.get(name).dtype != "I64") return;
  const std::vector<int64_t> counts = file.as_i64(name);
  const int64_t D = shape.model.embed_dim, G = static_cast<int64_t>(counts.size());
  int64_t H = 0;
  for (int64_t count : counts) {
    if (count < 0 || count > D) return;
    H += count;
  }
  if (G == 0 || H == 0 || D % H != 0 || G * (D / H) != shape.kv_width) return;
  shape.model.num_heads = static_cast<int>(H);
  shape.model.num_kv_heads = static_cast<int>(G);
  shape.heads_known = true;
}

}  // namespace

WeightsShape weights_shape(const SafetensorsFile& file) {
  WeightsShape shape;
  ModelConfig& model = shape.model;
  const std::vector<int64_t> patch = vit_tensor_shape(file, "patch_embed.proj.weight", 4);
  if (patch[2] != patch[3]) {
    throw InputError(file.path() + ": not the weights of a ViT: patch_embed.proj.weight has " +
                     "shape " + shape_text(patch) + ", not (D, C, p, p)");
  }
  model.embed_dim = static_cast<int>(patch[0]);
  model.in_channels = static_cast<int>(patch[1]);
  model.patch_size = static_cast<int>(patch[2]);
  model.image_size = image_size_of(file, model.patch_size, patch[0]);
  model.num_classes = static_cast<int>(vit_tensor_shape(file, "head.weight", 2)[0]);
  model.depth = 0;
  while (file.has("blocks." + std::to_string(model.depth) + ".norm1.weight")) ++model.depth;
  if (model.depth == 0) throw InputError(file.path() + ": not the weights of a ViT: no blocks");

  shape.timm = is_timm_checkpoint(file);
  shape.kv_width =
      shape.timm ? model.embed_dim : vit_tensor_shape(file, "blocks.0.attn.k.weight", 2)[0];
  if (shape.kv_width > model.embed_dim) {
    throw InputError(file.path() + ": not the weights of a ViT: blocks.0.attn.k.weight has " +
                     std::to_string(shape.kv_width) +
                     " rows, more than D = " + std::to_string(model.embed_dim));
  }
  model.attention = AttentionScheme::kMHA;  // timm's
  shape.scheme_known = shape.timm || scheme_of(file, &model.attention);
  if (!shape.timm && !shape.scheme_known) model.attention = AttentionScheme::kGQA;
  if (has_dgqa_state(model.attention)) heads_from_allocation(file, shape);
  if (!shape.heads_known) {
    const int64_t d = std::gcd(static_cast<int64_t>(model.embed_dim), shape.kv_width);
    model.num_heads = static_cast<int>(model.embed_dim / d);
    model.num_kv_heads = static_cast<int>(shape.kv_width / d);
  }
  return shape;
}

void check_finite(const std::vector<float>& values, const std::string& path,
                  const std::string& name) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      throw InputError(path + ": tensor " + name + " has a non-finite value (" +
                       std::to_string(values[i]) + " at element " + std::to_string(i) + ")");
    }
  }
}

bool has_dgqa_state(AttentionScheme scheme) {
  return scheme == AttentionScheme::kDGQA_DIFF || scheme == AttentionScheme::kDGQA_EMA;
}

void save_weights(const VisionTransformer& model, const std::string& path) {
  save_weights(model, model.params_to_host(), path);
}

void save_weights(const VisionTransformer& model, const std::vector<float>& params,
                  const std::string& path) {
  SafetensorsWriter writer;
  for (const TensorSlot& slot : model.layout().tensors()) {
    writer.add_f32(slot.name, slot.shape, params.data() + slot.offset);
  }
  if (has_dgqa_state(model.config().attention)) {
    const int64_t G = model.config().num_kv_heads;
    for (size_t l = 0; l < model.allocators().size(); ++l) {
      const GroupAllocator& allocator = model.allocators()[l];
      std::vector<int64_t> allocation(allocator.allocation().begin(), allocator.allocation().end());
      writer.add_f32(cache_name(l), {G}, allocator.cache().data());
      writer.add_i64(allocation_name(l), {G}, allocation.data());
    }
  }
  writer.set_metadata("format", "pt");
  writer.set_metadata("dgqa_attention", attention_scheme_name(model.config().attention));
  writer.write(path);
}

void load_weights(VisionTransformer& model, const std::string& path, OtherHead other_head,
                  OtherGrid other_grid) {
  load_weights(model, SafetensorsFile::read(path), other_head, other_grid);
}

void load_weights(VisionTransformer& model, const SafetensorsFile& file, OtherHead other_head,
                  OtherGrid other_grid) {
  const ModelConfig& config = model.config();
  const bool timm = is_timm_checkpoint(file);
  FloatTensors tensors = timm ? import_timm(file, config) : read_our_layout(file, model);
  for (const auto& [name, tensor] : tensors) check_finite(tensor.values, file.path(), name);
  if (other_grid == OtherGrid::kResample) fit_pos_embed(tensors, model, file.path());
  // Starts from the model's own values: they stay where the file's head is not loaded.
  std::vector<float> params = model.params_to_host();
  copy_into_params(tensors, model, file.path(), other_head, params);
  load_dgqa_state(file, model);
  model.params_from_host(params);
  if (timm) {
    LOG(INFO) << "Converted the timm checkpoint " << file.path()
              << ": split each block's attn.qkv into q, k and v, K/V heads mean-pooled from "
              << config.num_heads << " to " << config.num_kv_heads;
  }
}

}  // namespace dgqa
