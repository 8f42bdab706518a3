// The command line (cli/command_line.h): which flags each command takes, what `dgqa help` shows
// of them, and what the parser makes of them. The lists below are written out here, from
// docs/design.md §7, not taken from the parser's table.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "common/error.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

// Each command's flags, and a valid value for those that take one ("" for a switch).
const std::map<std::string, std::map<std::string, std::string>> kCommandFlags = {
    {"train",
     {{"--config", "c.pbtxt"},
      {"--set", "optimizer.lr=1"},
      {"--out", "o"},
      {"--resume", "runs/x"},
      {"--init-from", "w.safetensors"}}},
    {"eval",
     {{"--config", "c.pbtxt"},
      {"--set", "optimizer.lr=1"},
      {"--init-from", "w.safetensors"},
      {"--checkpoint", "o"},
      {"--logits-out", "l.npy"}}},
    {"convert",
     {{"--config", "c.pbtxt"}, {"--set", "model.num_kv_heads=2"}, {"--from", "t"}, {"--to", "o"}}},
    {"bench",
     {{"--config", "c.pbtxt"},
      {"--set", "optimizer.lr=1"},
      {"--steps", "2"},
      {"--warmup", "0"},
      {"--json", ""},
      {"--real-data", ""},
      {"--data-only", ""},
      {"--profile", ""},
      {"--peak-tflops", "989"}}},
    {"inspect", {{"--json", ""}, {"--show-config", ""}}},
};

// The synopsis of `command` in the usage text: from "  dgqa COMMAND" to the next "  dgqa ".
std::string synopsis(const std::string& usage, const std::string& command) {
  const size_t begin = usage.find("  dgqa " + command + " ");
  if (begin == std::string::npos) return "";
  return usage.substr(begin, usage.find("  dgqa ", begin + 1) - begin);
}

// A command line of `command` that is complete apart from `flag` (given last).
std::vector<std::string> with_flag(const std::string& command, const std::string& flag,
                                   const std::string& value) {
  std::vector<std::string> args = {command, "--config", "c.pbtxt"};
  if (command == "inspect") args = {command, "runs/x"};  // a PATH, no config
  if (command == "convert") args.insert(args.end(), {"--from", "t", "--to", "o"});
  if (command == "eval" && flag != "--init-from" && flag != "--checkpoint") {
    args.insert(args.end(), {"--init-from", "w"});
  }
  args.push_back(flag);
  if (!value.empty()) args.push_back(value);
  return args;
}

TEST(CommandLineTest, HelpShowsEachCommandWithItsOwnFlags) {
  const std::string usage = usage_text();
  std::set<std::string> every_flag;
  for (const auto& [command, flags] : kCommandFlags) {
    for (const auto& entry : flags) every_flag.insert(entry.first);
  }
  for (const auto& [command, flags] : kCommandFlags) {
    SCOPED_TRACE(command);
    const std::string text = synopsis(usage, command);
    ASSERT_FALSE(text.empty()) << usage;
    for (const std::string& flag : every_flag) {
      const bool listed =
          text.find(flag + " ") != std::string::npos || text.find(flag + "]") != std::string::npos;
      EXPECT_EQ(listed, flags.count(flag) == 1) << flag << " in\n" << text;
    }
  }
  // One help line per flag, starting with the flag.
  for (const std::string& flag : every_flag) {
    EXPECT_EQ(tests::count_lines_containing(usage, "  " + flag + " "), 1) << flag << "\n" << usage;
  }
}

TEST(CommandLineTest, EachCommandTakesItsFlagsAndRefusesTheOthers) {
  for (const auto& [command, flags] : kCommandFlags) {
    for (const auto& [other_command, other_flags] : kCommandFlags) {
      for (const auto& [flag, value] : other_flags) {
        SCOPED_TRACE("dgqa " + command + " " + flag);
        const std::vector<std::string> args = with_flag(command, flag, value);
        if (flags.count(flag) == 1) {
          if (flag == "--real-data" || flag == "--data-only") continue;  // exclusive: tested below
          EXPECT_NO_THROW(parse_command_line(args));
        } else {
          const std::string error = tests::input_error_of([&] { parse_command_line(args); });
          EXPECT_NE(error.find("unknown argument '" + flag + "' for dgqa " + command),
                    std::string::npos)
              << error;
        }
      }
    }
  }
}

TEST(CommandLineTest, ValuesGoToTheirFields) {
  const CommandLine train =
      parse_command_line({"train", "--config", "c.pbtxt", "--set", "a.b=1", "--out", "o", "--set",
                          "c.d=2", "--resume", "auto", "--init-from", "w"});
  EXPECT_EQ(train.command, "train");
  EXPECT_EQ(train.config_path, "c.pbtxt");
  EXPECT_EQ(train.overrides, (std::vector<std::string>{"a.b=1", "c.d=2"}));
  EXPECT_EQ(train.out_dir, "o");
  EXPECT_EQ(train.resume, "auto");
  EXPECT_EQ(train.init_from, "w");

  const CommandLine eval = parse_command_line(
      {"eval", "--config", "c", "--checkpoint", "runs/x", "--logits-out", "l.npy"});
  EXPECT_EQ(eval.checkpoint_dir, "runs/x");
  EXPECT_EQ(eval.logits_out, "l.npy");

  const CommandLine convert =
      parse_command_line({"convert", "--config", "c", "--from", "t.safetensors", "--to", "o"});
  EXPECT_EQ(convert.convert_from, "t.safetensors");
  EXPECT_EQ(convert.convert_to, "o");

  const CommandLine bench = parse_command_line(
      {"bench", "--config", "c", "--real-data", "--peak-tflops", "989.5", "--warmup", "0"});
  EXPECT_TRUE(bench.bench_real_data);
  EXPECT_DOUBLE_EQ(bench.bench_peak_tflops, 989.5);
  EXPECT_EQ(bench.bench_warmup, 0);
  EXPECT_EQ(bench.bench_steps, 20);

  const CommandLine inspect = parse_command_line({"inspect", "--json", "runs/x", "--show-config"});
  EXPECT_EQ(inspect.path, "runs/x");
  EXPECT_TRUE(inspect.json);
  EXPECT_TRUE(inspect.show_config);
  EXPECT_EQ(inspect.config_path, "");
}

TEST(CommandLineTest, HelpAnywhereAsksForHelp) {
  EXPECT_EQ(parse_command_line({"help"}).command, "help");
  EXPECT_EQ(parse_command_line({"-h"}).command, "help");
  EXPECT_EQ(parse_command_line({"bench", "--steps", "3", "--help"}).command, "help");
}

TEST(CommandLineTest, IncompleteOrContradictoryLinesAreRefused) {
  auto error_of = [](const std::vector<std::string>& args) {
    return tests::input_error_of([&] { parse_command_line(args); });
  };
  EXPECT_NE(error_of({"train", "--out", "o"}).find("--config is required"), std::string::npos);
  EXPECT_NE(error_of({"convert", "--config", "c", "--from", "t"}).find("--from FILE and --to"),
            std::string::npos);
  EXPECT_NE(error_of({"train", "--config", "c", "--resume", "auto"}).find("give --out"),
            std::string::npos);
  EXPECT_NE(
      error_of({"bench", "--config", "c", "--real-data", "--data-only"}).find("exclude each other"),
      std::string::npos);
  EXPECT_NE(error_of({"eval", "--config", "c"}).find("--checkpoint DIR or --init-from"),
            std::string::npos);
  EXPECT_NE(error_of({"train", "--config"}).find("--config needs a value"), std::string::npos);
  EXPECT_NE(error_of({"inspect", "--json"}).find("dgqa inspect needs PATH"), std::string::npos);
  EXPECT_NE(error_of({"inspect", "a", "b"}).find("unknown argument 'b' for dgqa inspect"),
            std::string::npos);
  EXPECT_NE(error_of({"train", "--config", "c", "runs/x"}).find("unknown argument 'runs/x'"),
            std::string::npos);
  EXPECT_NE(error_of({"bench", "--config", "c", "--steps", "0"}).find("--steps 0"),
            std::string::npos);
}

}  // namespace
}  // namespace dgqa
