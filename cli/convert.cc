// `dgqa convert` (docs/design.md §3.5 and §7): a timm MHA checkpoint in, our layout for the
// config's scheme and K/V heads out, ready for --init-from.
#include <glog/logging.h>

#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "io/timm_import.h"
#include "io/weights.h"
#include "kernels/backend.h"
#include "kernels/cpu/threads.h"
#include "model/vit.h"
#include "trainer/config.h"

namespace dgqa {

void convert_command(const CommandLine& line, const config::Config& config) {
  const ModelConfig model_config = model_config_from(config);
  const std::filesystem::path to_dir = std::filesystem::path(line.convert_to).parent_path();
  if (!to_dir.empty() && !std::filesystem::is_directory(to_dir)) {
    throw InputError("--to " + line.convert_to + ": the directory " + to_dir.string() +
                     " does not exist");
  }
  const SafetensorsFile file = SafetensorsFile::read(line.convert_from);
  if (!is_timm_checkpoint(file)) {
    if (file.has("blocks.0.attn.q.weight")) {
      throw InputError(line.convert_from +
                       " is already in dgqa's layout (split attn.q, attn.k, attn.v): there is "
                       "nothing to convert, give it to --init-from as it is");
    }
    throw InputError(line.convert_from +
                     " is not a timm ViT checkpoint: it has no blocks.0.attn.qkv.weight");
  }

  // The model, built to hold the converted weights (its head only matters when the file's head
  // is for another number of classes), then saved as training would save it. The conversion is
  // a copy and a few means: the CPU backend does it whatever backend the config trains on.
  cpu::set_threads(config.train().threads());
  std::unique_ptr<Backend> backend = make_backend("cpu");
  VisionTransformer model(model_config, *backend, /*max_batch=*/1, config.seed());
  load_weights(model, file, OtherHead::kReinitialise, OtherGrid::kResample);
  save_weights(model, line.convert_to);

  const bool dgqa = has_dgqa_state(model_config.attention);
  const size_t tensors = model.layout().tensors().size() + (dgqa ? 2 * model_config.depth : 0);
  LOG(INFO) << "Wrote " << tensors << " tensors to " << line.convert_to << " for "
            << attention_scheme_name(model_config.attention) << " with H " << model_config.num_heads
            << ", G " << model_config.num_kv_heads
            << (dgqa ? ", each layer's DGQA cache at 0 and allocation equal" : "");
}

}  // namespace dgqa
