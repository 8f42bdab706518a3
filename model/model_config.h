// The shape and attention scheme of a ViT, independent of how configs are stored.
#pragma once

#include <cstdint>
#include <string>

namespace dgqa {

enum class AttentionScheme { kMHA, kGQA, kKDGQA, kDGQA_DIFF, kDGQA_EMA, kPGQA };

// How DGQA picks its allocation at evaluation (docs/design.md §3.3).
enum class DgqaEvalMode { kFrozen, kPerBatch, kPerBatchUpdate };

// What DGQA's window counts, and how its apportionment is corrected (docs/design.md §3.3).
enum class DgqaWindowCounter { kGlobalStep, kEpochStep };
enum class DgqaFixup { kLargestRemainder, kRandomIndex };

struct ModelConfig {
  int image_size = 224;
  int patch_size = 16;
  int in_channels = 3;
  int num_classes = 1000;
  int embed_dim = 768;
  int depth = 12;
  int num_heads = 12;
  int num_kv_heads = 6;  // G; equals num_heads for MHA
  AttentionScheme attention = AttentionScheme::kGQA;
  int dgqa_window = 300;
  float dgqa_beta = 0.9f;
  DgqaEvalMode dgqa_eval = DgqaEvalMode::kFrozen;
  DgqaWindowCounter dgqa_window_counter = DgqaWindowCounter::kGlobalStep;
  DgqaFixup dgqa_fixup = DgqaFixup::kLargestRemainder;
  bool pgqa_eval_noise = true;
  float init_std = 0.02f;
  float drop_path_rate = 0.f;  // stochastic depth of the deepest block (docs/design.md §3.6)

  // The counts below are computed in 64 bits; one that does not fit in int throws
  // std::overflow_error (validate_config refuses such shapes first: an internal error here).
  int head_dim() const { return embed_dim / num_heads; }
  int num_patches() const;
  int num_tokens() const;  // patches + class token
  int mlp_dim() const;
};

const char* attention_scheme_name(AttentionScheme scheme);

// The same counts in 64 bits, for checking a shape before narrowing it (no overflow for any
// positive int fields; num_tokens is at most 2^62 + 1).
int64_t num_patches_of(const ModelConfig& config);
int64_t num_tokens_of(const ModelConfig& config);
int64_t mlp_dim_of(const ModelConfig& config);

}  // namespace dgqa
