#include "cli/commands.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/npy.h"
#include "io/weights.h"
#include "model/vit.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"
#include "trainer/evaluate.h"
#include "trainer/gradient_sync.h"
#include "trainer/key_norm_reducer.h"
#include "trainer/preemption.h"
#include "trainer/run_setup.h"
#include "trainer/trainer.h"

namespace dgqa {

void train_command(const CommandLine& line, const config::Config& config, Communicator& comm) {
  TrainOptions options;
  options.out_dir = line.out_dir;
  options.init_from = line.init_from;
  options.resume = line.resume;
  install_stop_handlers();
  run_training(config, options, comm);
}

void check_output_file(const std::string& flag, const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent)) {
    throw InputError(flag + " " + path + ": the directory " + parent.string() + " does not exist");
  }
  if (std::filesystem::is_directory(path)) {
    throw InputError(flag + " " + path + ": is a directory; name a file");
  }
}

void eval_command(const CommandLine& line, const config::Config& config, Communicator& comm) {
  if (!line.logits_out.empty()) check_output_file("--logits-out", line.logits_out);
  RunParts parts;
  parts.test_data = true;
  RunSetup setup(config, comm, parts);
  VisionTransformer& model = *setup.model;
  if (!line.checkpoint_dir.empty()) {
    const Checkpoint checkpoint = open_checkpoint(line.checkpoint_dir, config);
    if (line.ema) {
      load_checkpoint_ema(checkpoint, model);
    } else {
      load_checkpoint_model(checkpoint, model);
    }
    LOG(INFO) << "Evaluating " << (line.ema ? "the weight EMA of " : "") << "checkpoint "
              << checkpoint.dir << " (step " << checkpoint.state.step() << ")";
  } else {
    load_weights(model, line.init_from, OtherHead::kRefuse, OtherGrid::kResample);
  }

  std::vector<float> logits;
  KeyNormReducer reducer(comm, gradient_sync_options(config, comm.world_size()),
                         /*shared_nccl_sum=*/nullptr, "evaluation key-norm all-reduce");
  const EvalResult result =
      evaluate(model, *setup.test_loader, comm, reducer, /*step=*/0, config.train().eval_average(),
               line.logits_out.empty() ? nullptr : &logits);
  if (!std::isfinite(result.loss)) {  // finite weights whose logits overflow
    throw std::runtime_error("the mean loss over the " + std::to_string(result.examples) +
                             " examples is not finite: the weights' logits or losses overflow");
  }
  if (!line.logits_out.empty() && comm.rank() == 0) {
    write_npy_f32(line.logits_out, logits.data(),
                  {result.examples, setup.model_config.num_classes});
    LOG(INFO) << "Wrote the logits to " << line.logits_out;
  }
  if (comm.rank() == 0) {
    const nlohmann::json output = {{"loss", result.loss},
                                   {"top1", result.top1},
                                   {"top5", result.top5},
                                   {"examples", result.examples}};
    std::printf("%s\n", output.dump().c_str());
    std::fflush(stdout);
  }
}

}  // namespace dgqa
