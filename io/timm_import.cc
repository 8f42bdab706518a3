#include "io/timm_import.h"

#include <set>

#include "common/error.h"
#include "model/param_layout.h"

namespace dgqa {
namespace {

std::string block_tensor(int layer, const std::string& suffix) {
  return "blocks." + std::to_string(layer) + "." + suffix;
}

// Averages each contiguous group of H / G heads into one: H heads in, G heads out, a head being
// head_size consecutive floats.
std::vector<float> pool_heads(const float* heads, int H, int G, int64_t head_size) {
  const int per_group = H / G;
  std::vector<float> pooled(G * head_size);
  for (int g = 0; g < G; ++g) {
    const float* group = heads + g * per_group * head_size;
    for (int64_t i = 0; i < head_size; ++i) {
      double sum = 0;
      for (int h = 0; h < per_group; ++h) sum += group[h * head_size + i];
      pooled[g * head_size + i] = static_cast<float>(sum / per_group);
    }
  }
  return pooled;
}

// Splits block `layer`'s attn.qkv weight and bias into our attn.q, attn.k and attn.v.
void split_qkv(const SafetensorsFile& file, const ModelConfig& config, int layer,
               FloatTensors& tensors) {
  const int H = config.num_heads, G = config.num_kv_heads;
  const int64_t D = config.embed_dim, d = config.head_dim();
  for (const std::string kind : {"weight", "bias"}) {
    // A weight has D floats per output row, a bias one.
    const int64_t row_size = kind == "weight" ? D : 1;
    auto shape_of = [&](int64_t rows) {
      return kind == "weight" ? std::vector<int64_t>{rows, D} : std::vector<int64_t>{rows};
    };
    const std::string name = block_tensor(layer, "attn.qkv." + kind);
    if (!file.has(name)) {
      throw InputError(file.path() + ": missing tensor " + name + " " +
                       shape_text(shape_of(3 * D)));
    }
    if (file.get(name).shape != shape_of(3 * D)) {
      throw InputError(file.path() + ": tensor " + name + " has shape " +
                       shape_text(file.get(name).shape) + ", the model needs " +
                       shape_text(shape_of(3 * D)));
    }
    // Rows [0, D) are q, [D, 2D) k and [2D, 3D) v; within each, head h has rows [h*d, (h+1)*d).
    const std::vector<float> qkv = file.as_f32(name);
    const float* q = qkv.data();
    const float* k = q + D * row_size;
    const float* v = k + D * row_size;
    tensors[block_tensor(layer, "attn.q." + kind)] = {shape_of(D), std::vector<float>(q, k)};
    tensors[block_tensor(layer, "attn.k." + kind)] = {shape_of(G * d),
                                                      pool_heads(k, H, G, d * row_size)};
    tensors[block_tensor(layer, "attn.v." + kind)] = {shape_of(G * d),
                                                      pool_heads(v, H, G, d * row_size)};
  }
}

}  // namespace

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + ")";
}

bool is_timm_checkpoint(const SafetensorsFile& file) {
  return file.has("blocks.0.attn.qkv.weight");
}

FloatTensors import_timm(const SafetensorsFile& file, const ModelConfig& config) {
  const int H = config.num_heads, G = config.num_kv_heads;
  if (H % G != 0) {
    throw InputError("model.num_kv_heads: " + std::to_string(G) +
                     " does not divide model.num_heads = " + std::to_string(H) +
                     ": converting the multi-head checkpoint " + file.path() +
                     " averages its K/V heads in equal groups of H / G");
  }
  // timm's tensors: ours, with each block's attn.q/k/v replaced by the fused attn.qkv.
  std::set<std::string> copied, fused;
  const ParamLayout layout(config);
  for (const TensorSlot& slot : layout.tensors()) copied.insert(slot.name);
  for (int layer = 0; layer < config.depth; ++layer) {
    for (const std::string kind : {"weight", "bias"}) {
      for (const std::string part : {"q", "k", "v"}) {
        copied.erase(block_tensor(layer, "attn." + part + "." + kind));
      }
      fused.insert(block_tensor(layer, "attn.qkv." + kind));
    }
  }

  FloatTensors tensors;
  for (const std::string& name : file.names()) {
    if (copied.count(name) != 0) {
      tensors[name] = {file.get(name).shape, file.as_f32(name)};
    } else if (fused.count(name) == 0) {
      throw InputError(file.path() + ": unexpected tensor " + name +
                       " (not part of a timm ViT of this shape)");
    }
  }
  for (int layer = 0; layer < config.depth; ++layer) split_qkv(file, config, layer, tensors);
  return tensors;
}

}  // namespace dgqa
