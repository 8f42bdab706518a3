#include "cli/command_line.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <iterator>
#include <string>

#include "common/error.h"

namespace dgqa {
namespace {

// The commands, as bits of Flag::commands.
enum : unsigned {
  kTrain = 1,
  kEval = 2,
  kConvert = 4,
  kBench = 8,
  kDumpData = 16,
  kPack = 32,
  kInspect = 64
};
// The commands that run a config (inspect reads what a run wrote, config included).
constexpr unsigned kConfigured = kTrain | kEval | kConvert | kBench | kDumpData | kPack;

struct Command {
  const char* name;
  const char* operand = nullptr;  // the placeholder of its one argument that is not a flag
  const char* operand_help = nullptr;
};
const Command kCommands[] = {
    {"train"},
    {"eval"},
    {"convert"},
    {"bench"},
    {"dump-data"},
    {"pack"},
    {"inspect", "PATH",
     "inspect: a checkpoint (OUT/checkpoints/step_N, OUT/checkpoints or its latest),\n"
     "a run's OUT, or a weights or optimizer file. Exit code 0: sound;\n"
     "1: damaged (each problem named); 2: PATH is none of these"},
};

enum class Use { kOptional, kRequired, kRepeated };

struct Flag {
  const char* name;
  const char* value;  // the value's placeholder in the usage text; nullptr: a switch
  unsigned commands;
  Use use;
  const char* help;  // lines after the first are indented under it
  void (*apply)(CommandLine& line, const std::string& value);
};

int count(const std::string& flag, const std::string& text, int least);
std::string one_of(const std::string& flag, const std::string& text, const std::string& first,
                   const std::string& second);
double positive(const std::string& flag, const std::string& text, const std::string& what);

// Every flag of every command, in the order the usage text lists them.
const Flag kFlags[] = {
    {"--config", "FILE", kConfigured, Use::kRequired,
     "experiment config, protobuf text format (see configs/)",
     [](CommandLine& l, const std::string& v) { l.config_path = v; }},
    {"--set", "path=value", kConfigured, Use::kRepeated,
     "override a config field, e.g. --set optimizer.lr=3e-4;\n"
     "repeated fields take a comma-separated list",
     [](CommandLine& l, const std::string& v) { l.overrides.push_back(v); }},
    {"--out", "PATH", kTrain | kDumpData | kPack, Use::kOptional,
     "train: the folder for metrics.jsonl, checkpoints and model.safetensors;\n"
     "dump-data: FILE.npy of the inputs; pack: the folder to write",
     [](CommandLine& l, const std::string& v) { l.out_dir = v; }},
    {"--resume", "auto|DIR", kTrain, Use::kOptional,
     "train: continue from the newest good checkpoint under\n"
     "OUT/checkpoints (auto; a fresh start if there is none) or DIR",
     [](CommandLine& l, const std::string& v) { l.resume = v; }},
    {"--init-from", "FILE", kTrain | kEval, Use::kOptional,
     "weights to start from (train) or to evaluate (eval); ours or timm's",
     [](CommandLine& l, const std::string& v) { l.init_from = v; }},
    {"--checkpoint", "DIR", kEval, Use::kOptional,
     "eval: evaluate the weights of a checkpoint directory (OUT/checkpoints/step_N,\n"
     "or OUT: the latest), after checking it; exactly one of this and --init-from",
     [](CommandLine& l, const std::string& v) { l.checkpoint_dir = v; }},
    {"--ema", nullptr, kEval, Use::kOptional,
     "eval: evaluate the checkpoint's weight EMA (train.ema_decay) instead of its weights",
     [](CommandLine& l, const std::string&) { l.ema = true; }},
    {"--logits-out", "FILE", kEval, Use::kOptional,
     "eval: write the logits, float32 (N, classes), as .npy",
     [](CommandLine& l, const std::string& v) { l.logits_out = v; }},
    {"--from", "FILE", kConvert, Use::kRequired,
     "convert: a timm MHA checkpoint (fused attn.qkv) to read",
     [](CommandLine& l, const std::string& v) { l.convert_from = v; }},
    {"--to", "FILE", kConvert, Use::kRequired,
     "convert: our layout for the config's scheme and model.num_kv_heads",
     [](CommandLine& l, const std::string& v) { l.convert_to = v; }},
    {"--steps", "N", kBench, Use::kOptional, "bench: timed steps (default 20)",
     [](CommandLine& l, const std::string& v) { l.bench_steps = count("--steps", v, 1); }},
    {"--warmup", "N", kBench, Use::kOptional, "bench: untimed steps before them (default 3)",
     [](CommandLine& l, const std::string& v) { l.bench_warmup = count("--warmup", v, 0); }},
    {"--json", nullptr, kBench | kInspect, Use::kOptional,
     "bench, inspect: print one JSON object instead of the text report",
     [](CommandLine& l, const std::string&) { l.json = true; }},
    {"--real-data", nullptr, kBench, Use::kOptional,
     "bench: train on the config's data instead of a synthetic batch",
     [](CommandLine& l, const std::string&) { l.bench_real_data = true; }},
    {"--data-only", nullptr, kBench, Use::kOptional,
     "bench: time the data loader alone (images/s it delivers)",
     [](CommandLine& l, const std::string&) { l.bench_data_only = true; }},
    {"--profile", nullptr, kBench, Use::kOptional,
     "bench: also print the time of each kernel (synchronizing)",
     [](CommandLine& l, const std::string&) { l.bench_profile = true; }},
    {"--peak-tflops", "X", kBench, Use::kOptional,
     "bench: the peak TFLOP/s of one rank's device, for the model FLOP\n"
     "utilisation (MFU); known GPUs have a built-in figure",
     [](CommandLine& l, const std::string& v) {
       l.bench_peak_tflops =
           positive("--peak-tflops", v, "a number of TFLOP/s > 0 (the peak of one rank's device)");
     }},
    {"--plan", nullptr, kBench, Use::kOptional,
     "bench: run nothing; print the memory per rank of the config's model and\n"
     "the largest micro-batch that fits --device-memory on each of --ranks,\n"
     "with recompute NONE and BLOCK, without and with ZeRO-1 (dist.zero_stage)",
     [](CommandLine& l, const std::string&) { l.bench_plan = true; }},
    {"--device-memory", "GIB", kBench, Use::kOptional,
     "bench --plan: the memory of one rank's device, in GiB",
     [](CommandLine& l, const std::string& v) {
       l.plan_device_gib = positive("--device-memory", v, "a number of GiB > 0");
     }},
    {"--ranks", "N", kBench, Use::kOptional, "bench --plan: the number of ranks (devices)",
     [](CommandLine& l, const std::string& v) { l.plan_ranks = count("--ranks", v, 1); }},
    {"--split", "train|eval", kBench | kDumpData, Use::kOptional,
     "bench --data-only, dump-data: which split (default train)",
     [](CommandLine& l, const std::string& v) { l.split = one_of("--split", v, "train", "eval"); }},
    {"--count", "N", kDumpData, Use::kOptional,
     "dump-data: the first N examples in dataset order (default 16)",
     [](CommandLine& l, const std::string& v) { l.dump_count = count("--count", v, 1); }},
    {"--labels-out", "FILE", kDumpData, Use::kOptional,
     "dump-data: also write their labels, int64 (N,), as .npy",
     [](CommandLine& l, const std::string& v) { l.labels_out = v; }},
    {"--grid", "FILE", kDumpData, Use::kOptional,
     "dump-data: also write a contact sheet of them (PNG, un-normalised)",
     [](CommandLine& l, const std::string& v) { l.grid_out = v; }},
    {"--as", "folder|shards", kPack, Use::kRequired,
     "pack: write both splits as an image folder or as tar shards",
     [](CommandLine& l, const std::string& v) {
       l.pack_as = one_of("--as", v, "folder", "shards");
     }},
    {"--shard-size", "N", kPack, Use::kOptional, "pack: images per tar shard (default 10000)",
     [](CommandLine& l, const std::string& v) { l.shard_size = count("--shard-size", v, 1); }},
    {"--show-config", nullptr, kInspect, Use::kOptional,
     "inspect: also print the config the checkpoint records (protobuf text)",
     [](CommandLine& l, const std::string&) { l.show_config = true; }},
};

std::string one_of(const std::string& flag, const std::string& text, const std::string& first,
                   const std::string& second) {
  if (text != first && text != second) {
    throw InputError(flag + " " + text + ": expected " + first + " or " + second);
  }
  return text;
}

// A bench step count: a whole number >= least.
int count(const std::string& flag, const std::string& text, int least) {
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

// A finite number > 0; `what` describes it in the error.
double positive(const std::string& flag, const std::string& text, const std::string& what) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || !std::isfinite(value) || value <= 0) {
    throw InputError(flag + " " + text + ": expected " + what);
  }
  return value;
}

unsigned command_bit(const std::string& command) {
  for (unsigned i = 0; i < std::size(kCommands); ++i) {
    if (command == kCommands[i].name) return 1u << i;
  }
  return 0;
}

const char* operand_of(unsigned command) {
  for (unsigned i = 0; i < std::size(kCommands); ++i) {
    if (command == 1u << i) return kCommands[i].operand;
  }
  return nullptr;
}

const Flag* find_flag(const std::string& name, unsigned command) {
  for (const Flag& flag : kFlags) {
    if (name == flag.name && (flag.commands & command) != 0) return &flag;
  }
  return nullptr;
}

// "dgqa train --config FILE [--set path=value ...] ...", wrapped under the command's name.
std::string synopsis(unsigned command_index) {
  const Command& command = kCommands[command_index];
  const std::string head = std::string("  dgqa ") + command.name;
  const std::string indent(head.size() + 1, ' ');
  std::string text = head, line = head;
  if (command.operand != nullptr) {
    text += std::string(" ") + command.operand;
    line += std::string(" ") + command.operand;
  }
  for (const Flag& flag : kFlags) {
    if ((flag.commands & (1u << command_index)) == 0) continue;
    std::string word = flag.name;
    if (flag.value != nullptr) word += std::string(" ") + flag.value;
    if (flag.use == Use::kRepeated) word += " ...";
    if (flag.use != Use::kRequired) word = "[" + word + "]";
    if (line.size() + 1 + word.size() > 92) {
      text += "\n" + indent.substr(1);
      line = indent.substr(1);
    }
    text += " " + word;
    line += " " + word;
  }
  return text + "\n";
}

// "  --name VALUE        help", the help's later lines indented under its first.
std::string help_line(std::string left, std::string help) {
  constexpr size_t kColumn = 22;
  left.resize(std::max(left.size() + 1, kColumn), ' ');
  for (size_t at = help.find('\n'); at != std::string::npos; at = help.find('\n', at + 1)) {
    help.insert(at + 1, std::string(kColumn, ' '));
  }
  return left + help + "\n";
}

}  // namespace

std::string usage_text() {
  std::string text = "usage:\n";
  for (unsigned i = 0; i < std::size(kCommands); ++i) text += synopsis(i);
  text += "  dgqa help\n\n";
  for (const Command& command : kCommands) {
    if (command.operand != nullptr) {
      text += help_line(std::string("  ") + command.operand, command.operand_help);
    }
  }
  for (const Flag& flag : kFlags) {
    std::string left = std::string("  ") + flag.name;
    if (flag.value != nullptr) left += std::string(" ") + flag.value;
    text += help_line(left, flag.help);
  }
  return text;
}

CommandLine parse_command_line(const std::vector<std::string>& args) {
  CommandLine line;
  if (args.empty()) throw InputError("no command given\n" + usage_text());
  line.command = args[0];
  if (line.command == "help" || line.command == "--help" || line.command == "-h") {
    line.command = "help";
    return line;
  }
  const unsigned command = command_bit(line.command);
  if (command == 0) throw InputError("unknown command '" + line.command + "'\n" + usage_text());
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& name = args[i];
    if (name == "--help" || name == "-h") {
      line.command = "help";
      return line;
    }
    // The command's operand: the first argument that is not a flag.
    if (operand_of(command) != nullptr && line.path.empty() && !name.empty() && name[0] != '-') {
      line.path = name;
      continue;
    }
    const Flag* flag = find_flag(name, command);
    if (flag == nullptr) {
      throw InputError("unknown argument '" + name + "' for dgqa " + line.command + "\n" +
                       usage_text());
    }
    if (flag->value != nullptr && i + 1 >= args.size()) {
      throw InputError(name + " needs a value\n" + usage_text());
    }
    flag->apply(line, flag->value != nullptr ? args[++i] : std::string());
  }
  if (command == kInspect) {
    if (line.path.empty()) {
      throw InputError(
          "dgqa inspect needs PATH: a checkpoint, a run directory or a weights file\n" +
          usage_text());
    }
    return line;
  }
  if (line.config_path.empty()) throw InputError("--config is required\n" + usage_text());
  if (line.command == "convert" && (line.convert_from.empty() || line.convert_to.empty())) {
    throw InputError("dgqa convert needs --from FILE and --to FILE\n" + usage_text());
  }
  if (line.command == "train" && line.resume == "auto" && line.out_dir.empty()) {
    throw InputError("--resume auto looks for checkpoints under --out DIR: give --out");
  }
  if ((line.command == "dump-data" || line.command == "pack") && line.out_dir.empty()) {
    throw InputError("dgqa " + line.command + " needs --out\n" + usage_text());
  }
  if (line.command == "pack" && line.pack_as.empty()) {
    throw InputError("dgqa pack needs --as folder|shards\n" + usage_text());
  }
  if (line.bench_real_data && line.bench_data_only) {
    throw InputError("dgqa bench: --real-data and --data-only exclude each other");
  }
  if (line.bench_plan != (line.plan_device_gib > 0) || line.bench_plan != (line.plan_ranks > 0)) {
    throw InputError("dgqa bench: --plan, --device-memory GIB and --ranks N go together");
  }
  if (line.bench_plan && (line.bench_real_data || line.bench_data_only || line.bench_profile)) {
    throw InputError("dgqa bench --plan runs nothing: no --real-data, --data-only or --profile");
  }
  if (line.command == "eval" && line.init_from.empty() == line.checkpoint_dir.empty()) {
    throw InputError(
        "dgqa eval needs the weights to evaluate: either --checkpoint DIR or --init-from "
        "FILE.safetensors, not both");
  }
  if (line.ema && line.checkpoint_dir.empty()) {
    throw InputError(
        "dgqa eval --ema evaluates a checkpoint's weight EMA: give --checkpoint DIR (a run's "
        "final EMA is OUT/model_ema.safetensors, for --init-from without --ema)");
  }
  return line;
}

}  // namespace dgqa
