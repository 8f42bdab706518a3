#include "trainer/weights.h"

#include <glog/logging.h>

#include <set>

#include "common/error.h"
#include "trainer/safetensors.h"

namespace dgqa {
namespace {

bool is_dgqa(AttentionScheme scheme) {
  return scheme == AttentionScheme::kDGQA_DIFF || scheme == AttentionScheme::kDGQA_EMA;
}

std::string cache_name(int layer) {
  return "blocks." + std::to_string(layer) + ".attn.cache";
}
std::string allocation_name(int layer) {
  return "blocks." + std::to_string(layer) + ".attn.allocation";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + ")";
}

}  // namespace

void save_weights(const VisionTransformer& model, const std::string& path) {
  const std::vector<float> params = model.params_to_host();
  SafetensorsWriter writer;
  for (const TensorSlot& slot : model.layout().tensors()) {
    writer.add_f32(slot.name, slot.shape, params.data() + slot.offset);
  }
  if (is_dgqa(model.config().attention)) {
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

void load_weights(VisionTransformer& model, const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  std::vector<float> params(model.layout().total_size(), 0.f);
  std::set<std::string> expected;
  for (const TensorSlot& slot : model.layout().tensors()) {
    expected.insert(slot.name);
    if (!file.has(slot.name)) {
      throw InputError(path + ": missing tensor " + slot.name + " " + shape_text(slot.shape));
    }
    if (file.get(slot.name).shape != slot.shape) {
      throw InputError(path + ": tensor " + slot.name + " has shape " +
                       shape_text(file.get(slot.name).shape) + ", the model needs " +
                       shape_text(slot.shape));
    }
    const std::vector<float> values = file.as_f32(slot.name);
    std::copy(values.begin(), values.end(), params.begin() + slot.offset);
  }

  const int depth = model.config().depth;
  const int64_t G = model.config().num_kv_heads;
  bool has_state = false;
  for (int l = 0; l < depth; ++l) {
    for (const std::string& name : {cache_name(l), allocation_name(l)}) {
      if (!file.has(name)) continue;
      expected.insert(name);
      has_state = true;
      if (file.get(name).shape != std::vector<int64_t>{G}) {
        throw InputError(path + ": tensor " + name + " has shape " +
                         shape_text(file.get(name).shape) + ", the model needs (" +
                         std::to_string(G) + ")");
      }
    }
  }
  for (const std::string& name : file.names()) {
    if (expected.count(name) == 0) {
      throw InputError(path + ": unexpected tensor " + name + " (not part of this model)");
    }
  }

  if (has_state && is_dgqa(model.config().attention)) {
    for (int l = 0; l < depth; ++l) {
      if (!file.has(cache_name(l)) || !file.has(allocation_name(l))) {
        throw InputError(path + ": DGQA state of layer " + std::to_string(l) +
                         " is incomplete (needs " + cache_name(l) + " and " + allocation_name(l) +
                         ")");
      }
      const std::vector<int64_t> allocation = file.as_i64(allocation_name(l));
      try {
        model.allocators()[l].set_state(file.as_f32(cache_name(l)),
                                        std::vector<int>(allocation.begin(), allocation.end()));
      } catch (const InputError& error) {
        throw InputError(path + ": layer " + std::to_string(l) + ": " + error.what());
      }
    }
    LOG(INFO) << "Loaded the DGQA cache and allocation of every layer from " << path;
  } else if (has_state) {
    LOG(INFO) << path << " holds DGQA state, which "
              << attention_scheme_name(model.config().attention) << " does not use";
  }
  model.params_from_host(params);
}

}  // namespace dgqa
