// The `dgqa` command line (docs/design.md §7). Every flag is declared once, in the table of
// cli/command_line.cc (name, the commands that take it, its help), which drives both the parsing
// and `dgqa help`; so is each command's operand (inspect's PATH). The commands themselves live in
// cli/commands.h, cli/bench.h and cli/data_tools.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dgqa {

struct CommandLine {
  std::string command;      // "train", "eval", "convert", "bench", "dump-data", "pack", "inspect"
                            // or "help"
  std::string path;         // PATH (inspect): a checkpoint, a run directory or a weights file
  std::string config_path;  // --config (every command but inspect)
  std::vector<std::string> overrides;  // --set path=value, in order
  std::string out_dir;                 // --out (train, pack: a folder; dump-data: FILE.npy)
  std::string init_from;               // --init-from FILE.safetensors (train, eval)
  std::string checkpoint_dir;          // --checkpoint DIR (eval): a checkpoint's weights
  std::string logits_out;              // --logits-out FILE.npy (eval)
  bool ema = false;                    // --ema (eval): the checkpoint's weight EMA
  std::string resume;                  // --resume auto|DIR (train)
  std::string convert_from;            // --from timm.safetensors (convert)
  std::string convert_to;              // --to out.safetensors (convert)
  int bench_steps = 20;                // --steps N (bench): timed steps
  int bench_warmup = 3;                // --warmup N (bench): untimed steps first
  bool json = false;                   // --json (bench, inspect): one JSON object on stdout
  bool bench_real_data = false;        // --real-data (bench): the config's data, not synthetic
  bool bench_data_only = false;        // --data-only (bench): time the data loader alone
  bool bench_profile = false;          // --profile (bench): time every kernel call
  double bench_peak_tflops = 0;        // --peak-tflops X (bench): one device's peak; 0: none given
  bool bench_plan = false;             // --plan (bench): the largest micro-batch that fits
  double plan_device_gib = 0;          // --device-memory GIB (bench --plan): memory per device
  int plan_ranks = 0;                  // --ranks N (bench --plan)
  std::string split = "train";         // --split train|eval (bench --data-only, dump-data)
  int64_t dump_count = 16;             // --count N (dump-data): the first N examples
  std::string labels_out;              // --labels-out FILE.npy (dump-data)
  std::string grid_out;                // --grid FILE.png (dump-data): a contact sheet
  std::string pack_as;                 // --as folder|shards (pack)
  int shard_size = 10000;              // --shard-size N (pack): images per tar shard
  bool show_config = false;            // --show-config (inspect): print the recorded config
};

// Throws InputError naming the unknown, misplaced or incomplete argument.
CommandLine parse_command_line(const std::vector<std::string>& args);

// The usage text printed by `dgqa help` and after argument errors.
std::string usage_text();

}  // namespace dgqa
