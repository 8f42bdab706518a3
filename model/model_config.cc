#include "model/model_config.h"

namespace dgqa {

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
