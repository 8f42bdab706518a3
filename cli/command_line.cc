#include "cli/command_line.h"

#include <cmath>
#include <exception>
#include <string>

#include "common/error.h"

namespace dgqa {

std::string usage_text() {
  return "usage:\n"
         "  dgqa train --config FILE [--set path=value ...] [--out DIR] [--init-from FILE]\n"
         "             [--resume auto|DIR]\n"
         "  dgqa eval  --config FILE (--checkpoint DIR | --init-from FILE.safetensors)\n"
         "             [--set path=value ...] [--logits-out FILE.npy]\n"
         "  dgqa convert --config FILE --from timm.safetensors --to out.safetensors\n"
         "  dgqa bench --config FILE [--set path=value ...] [--steps N] [--warmup N] [--json]\n"
         "             [--real-data | --data-only] [--profile] [--peak-tflops X]\n"
         "  dgqa help\n"
         "\n"
         "  --config FILE       experiment config, protobuf text format (see configs/)\n"
         "  --set path=value    override a config field, e.g. --set optimizer.lr=3e-4;\n"
         "                      repeated fields take a comma-separated list\n"
         "  --out DIR           train: receives metrics.jsonl and model.safetensors\n"
         "  --init-from FILE    weights to start from (train) or to evaluate (eval)\n"
         "  --checkpoint DIR    eval: evaluate the weights of a checkpoint directory\n"
         "                      (OUT/checkpoints/step_N, or OUT: the latest), after checking it\n"
         "  --logits-out FILE   eval: write the logits, float32 (N, classes), as .npy\n"
         "  --resume auto|DIR   train: continue from the newest good checkpoint under\n"
         "                      OUT/checkpoints (auto; a fresh start if there is none) or DIR\n"
         "  --from, --to        convert: a timm MHA checkpoint (fused attn.qkv) in, our layout\n"
         "                      for the config's scheme and model.num_kv_heads out\n"
         "  --steps, --warmup   bench: timed steps (default 20) after untimed ones (default 3)\n"
         "  --json              bench: print one JSON object instead of the text report\n"
         "  --real-data         bench: train on the config's data instead of a synthetic batch\n"
         "  --data-only         bench: time the data loader alone (images/s it delivers)\n"
         "  --profile           bench: also print the time of each kernel (synchronizing)\n"
         "  --peak-tflops X     bench: the peak TFLOP/s of one rank's device, for the model FLOP\n"
         "                      utilisation (MFU); known GPUs have a built-in figure\n";
}

namespace {

// A bench step count: a whole number, at least 1 for --steps and 0 for --warmup.
int count(const std::string& flag, const std::string& text) {
  const int least = flag == "--steps" ? 1 : 0;
  size_t used = 0;
  int value = -1;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < least) {
    throw InputError(flag + " " + text + ": expected a whole number >= " + std::to_string(least));
  }
  return value;
}

// --peak-tflops: a finite number > 0.
double peak_tflops(const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || !std::isfinite(value) || value <= 0) {
    throw InputError("--peak-tflops " + text +
                     ": expected a number of TFLOP/s > 0 (the peak of one rank's device)");
  }
  return value;
}

}  // namespace

CommandLine parse_command_line(const std::vector<std::string>& args) {
  CommandLine line;
  if (args.empty()) throw InputError("no command given\n" + usage_text());
  line.command = args[0];
  if (line.command == "help" || line.command == "--help" || line.command == "-h") {
    line.command = "help";
    return line;
  }
  if (line.command != "train" && line.command != "eval" && line.command != "convert" &&
      line.command != "bench") {
    throw InputError("unknown command '" + line.command + "'\n" + usage_text());
  }
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--help" || flag == "-h") {
      line.command = "help";
      return line;
    }
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw InputError(flag + " needs a value\n" + usage_text());
      return args[++i];
    };
    if (flag == "--config") {
      line.config_path = value();
    } else if (flag == "--set") {
      line.overrides.push_back(value());
    } else if (flag == "--init-from") {
      line.init_from = value();
    } else if (flag == "--out" && line.command == "train") {
      line.out_dir = value();
    } else if (flag == "--checkpoint" && line.command == "eval") {
      line.checkpoint_dir = value();
    } else if (flag == "--logits-out" && line.command == "eval") {
      line.logits_out = value();
    } else if (flag == "--resume" && line.command == "train") {
      line.resume = value();
    } else if (flag == "--from" && line.command == "convert") {
      line.convert_from = value();
    } else if (flag == "--to" && line.command == "convert") {
      line.convert_to = value();
    } else if (line.command == "bench" && (flag == "--steps" || flag == "--warmup")) {
      (flag == "--steps" ? line.bench_steps : line.bench_warmup) = count(flag, value());
    } else if (flag == "--json" && line.command == "bench") {
      line.bench_json = true;
    } else if (flag == "--real-data" && line.command == "bench") {
      line.bench_real_data = true;
    } else if (flag == "--data-only" && line.command == "bench") {
      line.bench_data_only = true;
    } else if (flag == "--profile" && line.command == "bench") {
      line.bench_profile = true;
    } else if (flag == "--peak-tflops" && line.command == "bench") {
      line.bench_peak_tflops = peak_tflops(value());
    } else {
      throw InputError("unknown argument '" + flag + "' for dgqa " + line.command + "\n" +
                       usage_text());
    }
  }
  if (line.config_path.empty()) throw InputError("--config is required\n" + usage_text());
  if (line.command == "convert" && (line.convert_from.empty() || line.convert_to.empty())) {
    throw InputError("dgqa convert needs --from FILE and --to FILE\n" + usage_text());
  }
  if (line.command == "train" && line.resume == "auto" && line.out_dir.empty()) {
    throw InputError("--resume auto looks for checkpoints under --out DIR: give --out");
  }
  if (line.bench_real_data && line.bench_data_only) {
    throw InputError("dgqa bench: --real-data and --data-only exclude each other");
  }
  if (line.command == "eval" && line.init_from.empty() == line.checkpoint_dir.empty()) {
    throw InputError(
        "dgqa eval needs the weights to evaluate: either --checkpoint DIR or --init-from "
        "FILE.safetensors, not both");
  }
  return line;
}

}  // namespace dgqa
