#include "model/model_config.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace dgqa {
namespace {

int narrow(int64_t value, const char* what) {
  if (value > std::numeric_limits<int>::max() || value < std::numeric_limits<int>::min()) {
    throw std::overflow_error(std::string("ModelConfig: ") + what + " " + std::to_string(value) +
                              " does not fit in int");
  }
  return static_cast<int>(value);
}

}  // namespace

int64_t num_patches_of(const ModelConfig& config) {
  const int64_t side = config.image_size / config.patch_size;
  return side * side;
}

int64_t num_tokens_of(const ModelConfig& config) {
  return num_patches_of(config) + 1;
}

int64_t mlp_dim_of(const ModelConfig& config) {
  return int64_t{4} * config.embed_dim;
}

int ModelConfig::num_patches() const {
  return narrow(num_patches_of(*this), "num_patches");
}

int ModelConfig::num_tokens() const {
  return narrow(num_tokens_of(*this), "num_tokens");
}

int ModelConfig::mlp_dim() const {
  return narrow(mlp_dim_of(*this), "mlp_dim");
}

const char* attention_scheme_name(AttentionScheme scheme) {
  switch (scheme) {
    case AttentionScheme::kMHA:
      return "MHA";
    case AttentionScheme::kGQA:
      return "GQA";
    case AttentionScheme::kKDGQA:
      return "KDGQA";
    case AttentionScheme::kDGQA_DIFF:
      return "DGQA_DIFF";
    case AttentionScheme::kDGQA_EMA:
      return "DGQA_EMA";
    case AttentionScheme::kPGQA:
      return "PGQA";
  }
  return "?";
}

}  // namespace dgqa
