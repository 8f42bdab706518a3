// Checkpoints, resuming and preemption end to end (docs/design.md §6): a run killed after a
// checkpoint (also during its final evaluation, or while writing one) and resumed with
// --resume auto continues bit-identically, on 1 rank and under mpirun; SIGTERM/SIGUSR1 stop a
// run with a complete checkpoint and exit code 75; damaged, truncated, mismatched, unwritable and
// full-disk checkpoints are refused or reported without harming the earlier ones; keep_last
// prunes; another world size resumes with a warning. Under ZeRO-1 the ranks write their shards of
// the optimizer state, which resume bit-identically on the same world size and re-sharded on
// another, and a damaged shard is refused by name.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using tests::shell_quote;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitInputError = 2;
constexpr int kExitPreempted = 75;

// How dgqa is started for a run of `ranks` ranks: directly, or under mpirun.
std::string launcher(int ranks) {
  return ranks == 1 ? "" : tests::mpirun_prefix(ranks);
}

// No test may hang: every run of dgqa is killed after this long.
std::string timeout() {
  return "timeout -s KILL 120 ";
}

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

Result run(const std::string& command) {
  Result result;
  result.exit_code = tests::run_command(command, &result.output);
  return result;
}

// `dgqa train --config CONFIG --out OUT ARGS` on `ranks` ranks.
Result train(int ranks, const std::string& config, const std::string& out,
             const std::string& args = "") {
  return run(timeout() + launcher(ranks) + DGQA_BINARY + " train --config " + shell_quote(config) +
             " --out " + shell_quote(out) + " " + args);
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string checkpoint_dir(const std::string& out, int step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step_%08d", step);
  return out + "/checkpoints/" + name;
}

std::string latest_checkpoint(const std::string& out) {
  const std::string path = out + "/checkpoints/latest";
  return tests::file_exists(path) ? tests::read_file(path) : "";
}

// The records of metrics.jsonl in order, without the wall-clock throughput.
std::vector<json> metrics_records(const std::string& out) {
  std::vector<json> records;
  for (const std::string& line : tests::lines_of(tests::read_file(out + "/metrics.jsonl"))) {
    json record = json::parse(line);
    record.erase("images_per_sec");
    records.push_back(std::move(record));
  }
  return records;
}

// "" when the two runs logged the same records; else the first difference.
std::string compare_records(const std::vector<json>& expected, const std::vector<json>& actual) {
  for (size_t i = 0; i < std::min(expected.size(), actual.size()); ++i) {
    if (expected[i] != actual[i]) {
      return "record " + std::to_string(i) + ": expected " + expected[i].dump() + ", got " +
             actual[i].dump();
    }
  }
  if (expected.size() > actual.size()) {
    return "expected " + std::to_string(expected.size()) + " records, got " +
           std::to_string(actual.size()) +
           "; the first missing one: " + expected[actual.size()].dump();
  }
  if (expected.size() < actual.size()) {
    return "expected " + std::to_string(expected.size()) + " records, got " +
           std::to_string(actual.size()) +
           "; the first extra one: " + actual[expected.size()].dump();
  }
  return "";
}

std::vector<int64_t> train_steps(const std::vector<json>& records) {
  std::vector<int64_t> steps;
  for (const json& record : records) {
    if (record.at("kind") == "train") steps.push_back(record.at("step"));
  }
  return steps;
}

// Every file and directory under dir (relative path -> content; directories map to "<dir>").
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const std::string name = fs::relative(entry.path(), dir).string();
    files[name] = entry.is_directory() ? "<dir>" : tests::read_file(entry.path().string());
  }
  return files;
}

// "" when the snapshots agree; else what differs.
std::string compare_snapshots(const std::map<std::string, std::string>& expected,
                              const std::map<std::string, std::string>& actual) {
  std::string differences;
  for (const auto& [name, content] : expected) {
    const auto found = actual.find(name);
    if (found == actual.end()) {
      differences += " missing " + name + ";";
    } else if (found->second != content) {
      differences += " changed " + name + ";";
    }
  }
  for (const auto& [name, content] : actual) {
    if (expected.count(name) == 0) differences += " new " + name + ";";
  }
  return differences;
}

// The names under dir/checkpoints, sorted.
std::vector<std::string> checkpoint_entries(const std::string& out) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(out + "/checkpoints")) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string join(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : " ") + name;
  return text;
}

// Checks that a checkpoint directory holds the three files, and returns its step (-1 if not).
int64_t complete_checkpoint_step(const std::string& dir) {
  for (const char* file : {"state.pbtxt", "model.safetensors", "optimizer.safetensors"}) {
    if (!tests::file_exists(dir + "/" + file)) return -1;
  }
  for (const std::string& line : tests::lines_of(tests::read_file(dir + "/state.pbtxt"))) {
    if (line.rfind("step: ", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// Runs `body` when the scope ends, also when an assertion returns early.
class ScopeGuard {
 public:
  explicit ScopeGuard(std::function<void()> body) : body_(std::move(body)) {}
  ~ScopeGuard() { body_(); }
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;

 private:
  std::function<void()> body_;
};

void flip_byte_in_the_middle(const std::string& path) {
  std::string bytes = tests::read_file(path);
  ASSERT_GT(bytes.size(), 0u);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
  tests::write_file(path, bytes);
}

void truncate_file(const std::string& path) {
  fs::resize_file(path, fs::file_size(path) / 2);
}

struct Training {
  std::string scheme = "DGQA_EMA";
  int max_steps = 30;
  int every_steps = 15;
  int keep_last = 3;
  bool slow = true;  // evaluate on the test split after every step
  int log_every_steps = 1;
  int dgqa_window = 3;      // DGQA's cache and allocation carry over between steps
  std::string extra_model;  // more text inside model { }, named by `name` in file names
  std::string name;
  // Every fine-tuning option at once: label smoothing, layer-wise LR decay, timm's no-decay
  // rule, a warm-up from a start factor, a multi-step decay whose milestones fall between
  // checkpoints, drop path and a weight EMA.
  bool fine_tuning = false;
  bool weight_ema = false;   // train.ema_decay 0.9 with its warm-up
  int micro_batch_size = 0;  // images per forward pass and rank; 0: the rank's whole batch
  std::string mixup;         // the fields of a mixup { } section, named by `name` in file names
  bool zero = false;         // dist.zero_stage 1: AdamW's moments sharded over the ranks
};

// What the tests share, made on first use and removed when the program ends: the datasets, the
// configs and the uninterrupted runs that interrupted ones are compared with.
struct Shared {
  std::string dir = tests::make_temp_dir("dgqa_checkpoint_");
  std::optional<tests::FixtureDataset> dataset;
  std::map<std::string, std::string> references;  // config and ranks -> output directory
};

Shared* shared = nullptr;

class SharedCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    if (shared == nullptr) return;
    tests::run_command("rm -rf " + shell_quote(shared->dir));
    delete shared;
    shared = nullptr;
  }
};

::testing::Environment* const kSharedCleanup =
    ::testing::AddGlobalTestEnvironment(new SharedCleanup);

Shared& get_shared() {
  if (shared == nullptr) shared = new Shared;
  return *shared;
}

const tests::FixtureDataset& fixture_dataset() {
  Shared& state = get_shared();
  if (state.dataset) return *state.dataset;
  tests::FixtureDatasetOptions options;
  options.train_count = 100;  // 12 steps of 8 per epoch: the runs cross epochs
  // Evaluating 3000 images after every step makes a step slow enough to interrupt.
  options.test_count = 3000;
  const std::string dir = state.dir + "/data";
  fs::create_directories(dir);
  state.dataset = tests::write_fixture_dataset(dir, options);
  return *state.dataset;
}

// The config file of a training run (written on first use).
std::string config_path(const Training& training) {
  tests::FixtureConfig config;
  config.attention = training.scheme;
  config.dgqa_window = training.dgqa_window;
  config.extra_model =
      training.extra_model + (training.fine_tuning ? " drop_path_rate: 0.3\n" : "");
  config.max_steps = training.max_steps;
  config.eval_every_steps = training.slow ? 1 : 0;
  config.eval_batch_size = 16;
  config.log_every_steps = training.log_every_steps;
  if (training.fine_tuning) {
    config.extra_optimizer = "label_smoothing: 0.1 layer_decay: 0.75 no_decay_1d: true\n";
    config.schedule =
        "warmup_steps: 3 warmup_start_factor: 0.2 kind: MULTI_STEP milestones: [4, 10]";
  }
  config.extra_train = "  micro_batch_size: " + std::to_string(training.micro_batch_size) + "\n";
  if (training.weight_ema || training.fine_tuning) {
    config.extra_train += "  ema_decay: 0.9 ema_warmup: true\n";
  }
  config.extra = "checkpoint { every_steps: " + std::to_string(training.every_steps) +
                 " keep_last: " + std::to_string(training.keep_last) +
                 " }\n"
                 "dist { verify_replicas: true" +
                 (training.zero ? std::string(" zero_stage: 1") : std::string()) + " }\n";
  if (!training.mixup.empty()) config.extra += "mixup { " + training.mixup + " }\n";
  const std::string name =
      training.scheme + "_" + std::to_string(training.max_steps) + "_" +
      std::to_string(training.every_steps) + "_" + std::to_string(training.keep_last) + "_" +
      std::to_string(training.log_every_steps) + (training.slow ? "_slow" : "") + "_" +
      std::to_string(training.dgqa_window) + training.name +
      (training.fine_tuning ? "_fine_tuning" : "") + (training.weight_ema ? "_ema" : "") + "_" +
      std::to_string(training.micro_batch_size) + (training.zero ? "_zero" : "");
  const std::string path = get_shared().dir + "/" + name + ".pbtxt";
  if (!tests::file_exists(path)) {
    tests::write_fixture_config(path, fixture_dataset(), config);
  }
  return path;
}

// The output directory of an uninterrupted run (made on first use; callers only read it).
std::string uninterrupted(const Training& training, int ranks) {
  const std::string config = config_path(training);
  const std::string key = config + " " + std::to_string(ranks);
  Shared& state = get_shared();
  const auto found = state.references.find(key);
  if (found != state.references.end()) return found->second;
  const std::string out = state.dir + "/reference" + std::to_string(state.references.size());
  const Result result = train(ranks, config, out);
  EXPECT_EQ(result.exit_code, kExitOk) << result.output;
  state.references[key] = out;
  return out;
}

// Expects the run in `out` to have logged and written exactly what the uninterrupted `reference`
// did: every metrics record but the throughput (a train record every log_every steps and at
// the last), the final weights, and the last checkpoint.
void expect_same_run(const std::string& reference, const std::string& out, int last_step,
                     int log_every = 1) {
  const std::vector<json> expected = metrics_records(reference);
  const std::vector<json> actual = metrics_records(out);
  EXPECT_EQ(compare_records(expected, actual), "");
  std::vector<int64_t> log_steps;
  for (int step = 1; step <= last_step; ++step) {
    if (step % log_every == 0 || step == last_step) log_steps.push_back(step);
  }
  EXPECT_EQ(train_steps(actual), log_steps);
  for (const char* file : {"model.safetensors", "model_ema.safetensors"}) {  // with a weight EMA
    ASSERT_EQ(tests::file_exists(out + "/" + file), tests::file_exists(reference + "/" + file));
    if (!tests::file_exists(reference + "/" + file)) continue;
    EXPECT_TRUE(tests::read_file(out + "/" + file) == tests::read_file(reference + "/" + file))
        << out << "/" << file << " differs from the uninterrupted run's";
  }
  // Every file of the last checkpoint (with ZeRO-1's shard files).
  EXPECT_EQ(compare_snapshots(snapshot(checkpoint_dir(reference, last_step)),
                              snapshot(checkpoint_dir(out, last_step))),
            "")
      << "the last checkpoint differs from the uninterrupted run's";
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "." + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    test_dir_ = get_shared().dir + "/" + name;
    fs::create_directories(test_dir_);
  }

  // A copy of an output directory for a test to change.
  std::string copy_of(const std::string& out, const std::string& name) {
    const std::string copy = test_dir_ + "/" + name;
    EXPECT_EQ(tests::run_command("cp -a " + shell_quote(out) + " " + shell_quote(copy)), 0);
    return copy;
  }

  // A 20-step run of `training` resumed from its checkpoint at each of `steps` gives the
  // uninterrupted run's metrics (log every 4 steps) and weights, bit for bit.
  void expect_resumes_bit_identical(const Training& training, const std::vector<int>& steps) {
    const std::string config = config_path(training);
    const std::string reference = uninterrupted(training, 1);
    for (int step : steps) {
      SCOPED_TRACE("resuming from step " + std::to_string(step));
      const std::string out = copy_of(reference, "from" + std::to_string(step));
      fs::remove(out + "/model.safetensors");
      const Result resumed =
          train(1, config, out, "--resume " + shell_quote(checkpoint_dir(out, step)));
      ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
      EXPECT_TRUE(contains(resumed.output, "Resuming from " + checkpoint_dir(out, step)))
          << resumed.output;
      expect_same_run(reference, out, 20, 4);
    }
  }

  std::string test_dir_;
};

// ---------------------------------------------------------------------------------------------
// 1. Killed after a checkpoint, resumed: bit-identical to an uninterrupted run.

// Starts a run and sends SIGKILL as soon as `latest` names the checkpoint of `step`: to the dgqa
// process, or to one rank of an MPI job (mpirun then ends the job). Reports "killed" when the
// signal was sent, "status=S" and the job's output.
std::string kill_after_checkpoint(int ranks, const std::string& config, const std::string& out,
                                  int step) {
  const std::string script =
      launcher(ranks) + DGQA_BINARY + " train --config " + shell_quote(config) + " --out " +
      shell_quote(out) + " >" + shell_quote(out + ".log") +
      " 2>&1 & launcher=$!\n"
      "for i in $(seq 12000); do\n"
      "  [ \"$(cat " +
      shell_quote(out + "/checkpoints/latest") +
      " 2>/dev/null)\" = " + fs::path(checkpoint_dir(out, step)).filename().string() +
      " ] && break\n"
      "  kill -0 $launcher 2>/dev/null || break\n"
      "  sleep 0.005\n"
      "done\n" +
      (ranks == 1 ? std::string("victim=$launcher\n")
                  : std::string("victim=$(pgrep -P $launcher -f 'dgqa train' | tail -n 1)\n")) +
      "[ -n \"$victim\" ] && kill -KILL $victim && echo killed\n"
      "wait $launcher; echo status=$?\n";
  tests::write_file(out + ".sh", script);
  std::string report;
  tests::run_command(timeout() + "bash " + shell_quote(out + ".sh"), &report);
  return report + "\n--- job output:\n" + tests::read_file(out + ".log");
}

struct KillCase {
  const char* scheme;
  int ranks;
  bool weight_ema = false;
  bool zero = false;  // ZeRO-1: the ranks write shards of the optimizer state
};

void PrintTo(const KillCase& kill, std::ostream* out) {
  *out << kill.scheme << " on " << kill.ranks << " rank(s)" << (kill.weight_ema ? " with EMA" : "")
       << (kill.zero ? " with ZeRO-1" : "");
}

class KillResumeTest : public CheckpointTest, public ::testing::WithParamInterface<KillCase> {};

TEST_P(KillResumeTest, ResumeAfterKillIsBitIdentical) {
  const KillCase kill = GetParam();
  Training training;
  training.scheme = kill.scheme;
  training.weight_ema = kill.weight_ema;
  training.zero = kill.zero;
  const std::string config = config_path(training);
  const std::string reference = uninterrupted(training, kill.ranks);
  const std::string out = test_dir_ + "/out";

  const std::string report = kill_after_checkpoint(kill.ranks, config, out, 15);
  ASSERT_TRUE(contains(report, "killed\n")) << report;
  EXPECT_FALSE(contains(report, "status=0\n")) << report;
  // The kill came between the two checkpoints: training did not finish.
  ASSERT_EQ(latest_checkpoint(out), "step_00000015") << report;
  ASSERT_FALSE(tests::file_exists(out + "/model.safetensors")) << report;
  ASSERT_EQ(complete_checkpoint_step(checkpoint_dir(out, 15)), 15);

  const Result resumed = train(kill.ranks, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "Resuming from " + checkpoint_dir(out, 15)))
      << resumed.output;
  EXPECT_FALSE(contains(resumed.output, "bit-identical")) << resumed.output;
  expect_same_run(reference, out, 30);
  EXPECT_EQ(latest_checkpoint(out), "step_00000030");
}

INSTANTIATE_TEST_SUITE_P(SchemesAndRanks, KillResumeTest,
                         ::testing::Values(KillCase{"DGQA_EMA", 1}, KillCase{"DGQA_EMA", 2},
                                           KillCase{"PGQA", 1}, KillCase{"PGQA", 2},
                                           KillCase{"DGQA_EMA", 2, /*weight_ema=*/true},
                                           KillCase{"DGQA_EMA", 2, /*weight_ema=*/true,
                                                    /*zero=*/true}),
                         [](const auto& test_param) {
                           return std::string(test_param.param.scheme) + "_" +
                                  std::to_string(test_param.param.ranks) + "rank" +
                                  (test_param.param.weight_ema ? "_weight_ema" : "") +
                                  (test_param.param.zero ? "_zero" : "");
                         });

// The checkpoint of the last step is written after the evaluation that ends training, so a run
// killed before that checkpoint repeats the evaluation on resuming, and resuming a finished run
// (its last checkpoint already holds that evaluation) adds nothing.
TEST_F(CheckpointTest, ResumingAFinishedRunAddsNothing) {
  Training training;
  training.max_steps = 10;  // within the first epoch: the only evaluation is the final one
  training.every_steps = 5;
  training.slow = false;
  const std::string config = config_path(training);
  const std::string out = test_dir_ + "/out";
  const Result first = train(1, config, out, "");
  ASSERT_EQ(first.exit_code, kExitOk) << first.output;
  ASSERT_EQ(latest_checkpoint(out), "step_00000010");
  const std::string metrics = tests::read_file(out + "/metrics.jsonl");
  const std::string model = tests::read_file(out + "/model.safetensors");
  ASSERT_EQ(tests::count_lines_containing(metrics, "\"kind\":\"eval\""), 1);

  const Result resumed = train(1, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "Resuming from " + checkpoint_dir(out, 10)))
      << resumed.output;
  EXPECT_EQ(tests::read_file(out + "/metrics.jsonl"), metrics);
  EXPECT_TRUE(tests::read_file(out + "/model.safetensors") == model);
}

// ---------------------------------------------------------------------------------------------
// 2. Asked to stop: every rank finishes its step, one checkpoint, exit 75; resuming continues.

// Starts a run with `launch` (a command line prefix), waits until it has logged `after_steps`
// train lines, sends `signal` to the processes `victims` names (a shell expression that may
// use $launcher, the launched process), and reports the lines "signalled N" and "status=S"
// and the job's output.
std::string signal_launched_run(const std::string& launch, const std::string& victims,
                                const std::string& config, const std::string& out,
                                const std::string& signal, int after_steps) {
  const std::string script = launch + " train --config " + shell_quote(config) + " --out " +
                             shell_quote(out) + " >" + shell_quote(out + ".log") +
                             " 2>&1 & launcher=$!\n"
                             "for i in $(seq 12000); do\n"
                             "  [ \"$(grep -c '\"kind\":\"train\"' " +
                             shell_quote(out + "/metrics.jsonl") + " 2>/dev/null)\" -ge " +
                             std::to_string(after_steps) +
                             " ] 2>/dev/null && break\n"
                             "  kill -0 $launcher 2>/dev/null || break\n"
                             "  sleep 0.005\n"
                             "done\n"
                             "victims=" +
                             victims +
                             "\n"
                             "echo signalled $(echo $victims | wc -w)\n"
                             "kill -" +
                             signal +
                             " $victims\n"
                             "wait $launcher; echo status=$?\n";
  tests::write_file(out + ".sh", script);
  std::string report;
  tests::run_command(timeout() + "bash " + shell_quote(out + ".sh"), &report);
  return report + "\n--- job output:\n" + tests::read_file(out + ".log");
}

// signal_launched_run of `ranks` ranks started by the tests' launcher, the signal going to
// every dgqa process of it (or only to the last rank).
std::string signal_run(int ranks, const std::string& config, const std::string& out,
                       const std::string& signal, int after_steps, bool only_last_rank = false) {
  const std::string victims = ranks == 1
                                  ? "$launcher"
                                  : "$(pgrep -P $launcher -f 'dgqa train'" +
                                        std::string(only_last_rank ? " | tail -n 1" : "") + ")";
  return signal_launched_run(launcher(ranks) + DGQA_BINARY, victims, config, out, signal,
                             after_steps);
}

// Expects what a stop on request leaves: a complete checkpoint named by `latest`, after a step
// in (0, max_steps), and no temporary directory. Returns its step.
int64_t expect_stopped_cleanly(const std::string& out, int max_steps, const std::string& report) {
  EXPECT_TRUE(contains(report, "status=" + std::to_string(kExitPreempted) + "\n")) << report;
  EXPECT_TRUE(contains(report, "stopped on request")) << report;
  const std::string latest = latest_checkpoint(out);
  EXPECT_EQ(latest.rfind("step_", 0), 0u) << report;
  const int64_t step = complete_checkpoint_step(out + "/checkpoints/" + latest);
  EXPECT_GT(step, 0) << report;
  EXPECT_LT(step, max_steps) << report;
  EXPECT_EQ(latest, fs::path(checkpoint_dir(out, static_cast<int>(step))).filename().string());
  for (const std::string& name : checkpoint_entries(out)) {
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << "left behind: " << name;
  }
  EXPECT_FALSE(tests::file_exists(out + "/model.safetensors")) << report;
  return step;
}

TEST_F(CheckpointTest, SigtermStopsAllRanksWithACheckpointAndExit75) {
  const Training training;  // the killed runs' (their uninterrupted runs are shared)
  const std::string config = config_path(training);
  const std::string reference = uninterrupted(training, 2);
  const std::string out = test_dir_ + "/out";
  const std::string report = signal_run(2, config, out, "TERM", 3);
  ASSERT_TRUE(contains(report, "signalled 2\n")) << report;
  const int64_t step = expect_stopped_cleanly(out, 30, report);
  EXPECT_GE(step, 3);
  EXPECT_TRUE(contains(report, "stopped on request after step " + std::to_string(step))) << report;

  const Result resumed = train(2, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(
      contains(resumed.output, "Resuming from " + checkpoint_dir(out, static_cast<int>(step))))
      << resumed.output;
  expect_same_run(reference, out, 30);
}

// A user of launch/mpirun.sh who stops the job with SIGTERM gets a checkpoint and exit code
// 75, as under SLURM (mpirun itself would kill the ranks and end with 1).
TEST_F(CheckpointTest, SigtermToTheMpirunScriptStopsWithACheckpointAndExit75) {
  const Training training;
  const std::string out = test_dir_ + "/out";
  const std::string launch = "DGQA_BIN=" + shell_quote(DGQA_BINARY) + " bash " +
                             shell_quote(std::string(DGQA_SOURCE_DIR) + "/launch/mpirun.sh") +
                             " -n 2 -t 1 --";
  const std::string report =
      signal_launched_run(launch, "$launcher", config_path(training), out, "TERM", 3);
  ASSERT_TRUE(contains(report, "signalled 1\n")) << report;
  expect_stopped_cleanly(out, 30, report);
}

// launch/slurm_train.sh, run with stand-ins for srun (runs the rank itself), scancel (signals
// the rank) and scontrol (records the call), is sent `signal` after a few steps. Reports the
// script's exit status, then the stand-ins' calls, then the job's output.
std::string slurm_script_run(const std::string& config, const std::string& out,
                             const std::string& signal) {
  const std::string fake = out + "_fake_slurm";
  fs::create_directories(fake);
  tests::write_file(fake + "/srun",
                    "#!/bin/sh\n"
                    "while [ $# -gt 0 ]; do case \"$1\" in --*) shift;; *) break;; esac; done\n"
                    "exec \"$@\"\n");
  tests::write_file(fake + "/scancel",
                    "#!/bin/sh\n"
                    "echo \"scancel $*\" >>\"$FAKE_SLURM_LOG\"\n"
                    "pkill -\"${1#--signal=}\" -f -- \"--out $OUT\"\n");
  tests::write_file(fake + "/scontrol", "#!/bin/sh\necho \"scontrol $*\" >>\"$FAKE_SLURM_LOG\"\n");
  for (const char* tool : {"srun", "scancel", "scontrol"}) {
    fs::permissions(fake + "/" + tool, fs::perms::owner_all, fs::perm_options::add);
  }
  const std::string script =
      "export PATH=" + shell_quote(fake) + ":$PATH FAKE_SLURM_LOG=" + shell_quote(out + ".calls") +
      " SLURM_JOB_ID=7 CONFIG=" + shell_quote(config) + " OUT=" + shell_quote(out) +
      " DGQA_BIN=" + shell_quote(DGQA_BINARY) + "\nbash " +
      shell_quote(std::string(DGQA_SOURCE_DIR) + "/launch/slurm_train.sh") + " >" +
      shell_quote(out + ".log") +
      " 2>&1 & job=$!\n"
      "for i in $(seq 12000); do\n"
      "  [ \"$(grep -c '\"kind\":\"train\"' " +
      shell_quote(out + "/metrics.jsonl") +
      " 2>/dev/null)\" -ge 3 ] 2>/dev/null && break\n"
      "  kill -0 $job 2>/dev/null || break\n"
      "  sleep 0.005\n"
      "done\n"
      "kill -" +
      signal + " $job\nwait $job; echo status=$?\ncat " + shell_quote(out + ".calls") + "\n";
  tests::write_file(out + ".sh", script);
  std::string report;
  tests::run_command(timeout() + "bash " + shell_quote(out + ".sh"), &report);
  return report + "\n--- job output:\n" + tests::read_file(out + ".log");
}

// SLURM's time-limit warning (SIGUSR1 to the batch shell): checkpoint, exit 75, requeue.
TEST_F(CheckpointTest, Sigusr1ToTheSlurmScriptCheckpointsAndRequeues) {
  const Training training;
  const std::string out = test_dir_ + "/out";
  const std::string report = slurm_script_run(config_path(training), out, "USR1");
  expect_stopped_cleanly(out, 30, report);
  EXPECT_TRUE(contains(report, "scancel --signal=USR1 7\n")) << report;
  EXPECT_TRUE(contains(report, "scontrol requeue 7\n")) << report;
}

// scancel (SIGTERM to the batch shell, no warning before): checkpoint, exit 75, no requeue.
TEST_F(CheckpointTest, SigtermToTheSlurmScriptCheckpointsWithoutRequeueing) {
  const Training training;
  const std::string out = test_dir_ + "/out";
  const std::string report = slurm_script_run(config_path(training), out, "TERM");
  expect_stopped_cleanly(out, 30, report);
  EXPECT_TRUE(contains(report, "scancel --signal=USR1 7\n")) << report;
  EXPECT_FALSE(contains(report, "scontrol requeue")) << report;
  EXPECT_TRUE(contains(report, "job 7 cancelled, not requeued")) << report;
}

TEST_F(CheckpointTest, SigtermToOneRankStopsEveryRank) {
  const Training training;
  const std::string out = test_dir_ + "/out";
  const std::string report = signal_run(2, config_path(training), out, "TERM", 3, true);
  ASSERT_TRUE(contains(report, "signalled 1\n")) << report;
  expect_stopped_cleanly(out, 30, report);
}

TEST_F(CheckpointTest, Sigusr1StopsOneRankWithACheckpointAndExit75) {
  const Training training;
  const std::string config = config_path(training);
  const std::string reference = uninterrupted(training, 1);
  const std::string out = test_dir_ + "/out";
  const std::string report = signal_run(1, config, out, "USR1", 3);
  ASSERT_TRUE(contains(report, "signalled 1\n")) << report;
  const int64_t step = expect_stopped_cleanly(out, 30, report);

  const Result resumed = train(1, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(
      contains(resumed.output, "Resuming from " + checkpoint_dir(out, static_cast<int>(step))))
      << resumed.output;
  expect_same_run(reference, out, 30);
}

// ---------------------------------------------------------------------------------------------
// 3. Integrity: damaged, truncated, mismatched, unwritable, full.

// One rank, 20 steps, a checkpoint every 5, all kept: steps 5, 10, 15 and 20; with every
// fine-tuning option, so that resuming covers them.
Training integrity_training() {
  Training training;
  training.max_steps = 20;
  training.every_steps = 5;
  training.keep_last = 0;
  training.slow = false;
  // Checkpoints inside log windows: a resumed run's train records count the images before it.
  training.log_every_steps = 4;
  training.fine_tuning = true;
  return training;
}

// The checkpoints before step 20 of `out` are those of the reference, byte for byte.
void expect_earlier_checkpoints_intact(const std::string& reference, const std::string& out) {
  for (int step : {5, 10, 15}) {
    EXPECT_EQ(compare_snapshots(snapshot(checkpoint_dir(reference, step)),
                                snapshot(checkpoint_dir(out, step))),
              "")
        << "step " << step;
  }
}

TEST_F(CheckpointTest, DamagedNewestCheckpointFallsBackToThePreviousOne) {
  const std::string config = config_path(integrity_training());
  const std::string reference = uninterrupted(integrity_training(), 1);
  ASSERT_EQ(join(checkpoint_entries(reference)),
            "latest step_00000005 step_00000010 step_00000015 step_00000020");
  const std::string out = copy_of(reference, "damaged");
  const std::string newest = checkpoint_dir(out, 20);
  flip_byte_in_the_middle(newest + "/model.safetensors");

  const Result explicit_resume = train(1, config, out, "--resume " + shell_quote(newest));
  EXPECT_EQ(explicit_resume.exit_code, kExitInputError) << explicit_resume.output;
  EXPECT_TRUE(contains(explicit_resume.output, "model.safetensors")) << explicit_resume.output;
  EXPECT_TRUE(contains(explicit_resume.output, "checksum")) << explicit_resume.output;

  const std::string missing = checkpoint_dir(out, 99);
  const Result missing_resume = train(1, config, out, "--resume " + shell_quote(missing));
  EXPECT_EQ(missing_resume.exit_code, kExitInputError) << missing_resume.output;
  EXPECT_TRUE(contains(missing_resume.output, missing)) << missing_resume.output;

  const Result resumed = train(1, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "Cannot resume from " + newest)) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "checksum")) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "Resuming from " + checkpoint_dir(out, 15)))
      << resumed.output;
  expect_earlier_checkpoints_intact(reference, out);
  expect_same_run(reference, out, 20, 4);
}

// `dgqa eval --checkpoint DIR` evaluates the checkpoint's weights (the same line as --init-from
// of its model.safetensors), also when DIR is the run's directory or its `latest`, and refuses a
// damaged checkpoint, as --resume does.
TEST_F(CheckpointTest, EvalOfACheckpointIsEvalOfItsWeights) {
  const std::string config = config_path(integrity_training());
  const std::string reference = uninterrupted(integrity_training(), 1);
  const std::string checkpoint = checkpoint_dir(reference, 15);
  const std::string eval = timeout() + DGQA_BINARY + " eval --config " + shell_quote(config);
  const Result of_checkpoint = dgqa::run(eval + " --checkpoint " + shell_quote(checkpoint));
  ASSERT_EQ(of_checkpoint.exit_code, kExitOk) << of_checkpoint.output;
  EXPECT_TRUE(contains(of_checkpoint.output, "Evaluating checkpoint " + checkpoint + " (step 15)"))
      << of_checkpoint.output;
  const Result of_weights =
      dgqa::run(eval + " --init-from " + shell_quote(checkpoint + "/model.safetensors"));
  ASSERT_EQ(of_weights.exit_code, kExitOk) << of_weights.output;
  // The JSON line each printed (the output holds the log lines too).
  auto json_line = [](const std::string& output) {
    std::string last;
    for (const std::string& line : tests::lines_of(output)) {
      if (!line.empty() && line[0] == '{') last = line;
    }
    return last;
  };
  ASSERT_TRUE(contains(json_line(of_weights.output), "\"top1\"")) << of_weights.output;
  EXPECT_EQ(json_line(of_checkpoint.output), json_line(of_weights.output));

  // The run's directory, its checkpoints/ and the file `latest` mean the checkpoint `latest`
  // names (step 20 here).
  const Result of_newest = dgqa::run(
      eval + " --init-from " + shell_quote(checkpoint_dir(reference, 20) + "/model.safetensors"));
  ASSERT_EQ(of_newest.exit_code, kExitOk) << of_newest.output;
  for (const std::string& named :
       {reference, reference + "/checkpoints", reference + "/checkpoints/latest"}) {
    const Result of_named = dgqa::run(eval + " --checkpoint " + shell_quote(named));
    ASSERT_EQ(of_named.exit_code, kExitOk) << named << ":\n" << of_named.output;
    EXPECT_TRUE(contains(of_named.output, "(step 20)")) << named << ":\n" << of_named.output;
    EXPECT_EQ(json_line(of_named.output), json_line(of_newest.output)) << named;
  }

  const std::string out = copy_of(reference, "damaged_for_eval");
  flip_byte_in_the_middle(checkpoint_dir(out, 15) + "/model.safetensors");
  const Result damaged = dgqa::run(eval + " --checkpoint " + shell_quote(checkpoint_dir(out, 15)));
  EXPECT_EQ(damaged.exit_code, kExitInputError) << damaged.output;
  EXPECT_TRUE(contains(damaged.output, "checksum")) << damaged.output;
}

// What a run killed while writing its step-20 checkpoint leaves: a partial temporary directory
// (and file) and `latest` naming step 15. --resume auto continues from step 15.
TEST_F(CheckpointTest, LeftoversOfAKilledCheckpointWriteAreIgnored) {
  const std::string config = config_path(integrity_training());
  const std::string reference = uninterrupted(integrity_training(), 1);
  const std::string out = copy_of(reference, "killed_while_writing");
  const std::string checkpoints = out + "/checkpoints";
  const std::string temp = checkpoints + "/.step_00000020.tmp.99999";
  ASSERT_EQ(
      tests::run_command("mv " + shell_quote(checkpoint_dir(out, 20)) + " " + shell_quote(temp)),
      0);
  fs::remove(temp + "/state.pbtxt");
  truncate_file(temp + "/optimizer.safetensors");
  tests::write_file(checkpoints + "/latest", "step_00000015");
  tests::write_file(checkpoints + "/latest.tmp.99999", "step_000");
  fs::remove(out + "/model.safetensors");

  const Result resumed = train(1, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "Resuming from " + checkpoint_dir(out, 15)))
      << resumed.output;
  expect_earlier_checkpoints_intact(reference, out);
  expect_same_run(reference, out, 20, 4);
}

// Resuming from each checkpoint in turn: mid-epoch, at the end of an epoch, in a later epoch.
TEST_F(CheckpointTest, ResumingFromAnyCheckpointIsBitIdentical) {
  Training training = integrity_training();
  training.every_steps = 6;  // 12 steps per epoch
  ASSERT_EQ(join(checkpoint_entries(uninterrupted(training, 1))),
            "latest step_00000006 step_00000012 step_00000018 step_00000020");
  expect_resumes_bit_identical(training, {6, 12, 18});
}

// The paper code's DGQA (docs/experiments.md) keeps state across evaluations and draws its
// rounding fix-up: a run resumed on either side of the epoch-end evaluation (step 12) is still
// bit-identical. Window 5 over 12-step epochs: the epoch counter's windows are not the global ones.
TEST_F(CheckpointTest, ResumingWithThePaperCodesDgqaIsBitIdentical) {
  Training training = integrity_training();
  training.scheme = "DGQA_DIFF";
  training.every_steps = 6;
  training.dgqa_window = 5;
  training.extra_model =
      "dgqa_eval: PER_BATCH_UPDATE dgqa_window_counter: EPOCH_STEP dgqa_fixup: RANDOM_INDEX";
  training.name = "_paper_code";
  expect_resumes_bit_identical(training, {6, 12});
}

// With gradient accumulation (micro-batches of 2, so 4 forward passes a step on 1 rank and 2 on
// 2 ranks; DGQA's window of 3 optimizer steps), resuming mid-run is bit-identical too.
TEST_F(CheckpointTest, ResumingWithAccumulationIsBitIdentical) {
  Training training = integrity_training();
  training.micro_batch_size = 2;
  const std::string config = config_path(training);
  for (int ranks : {1, 2}) {
    SCOPED_TRACE(std::to_string(ranks) + " rank(s)");
    const std::string reference = uninterrupted(training, ranks);
    const std::string out = copy_of(reference, "ranks" + std::to_string(ranks));
    fs::remove(out + "/model.safetensors");
    const Result resumed =
        train(ranks, config, out, "--resume " + shell_quote(checkpoint_dir(out, 10)));
    ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
    EXPECT_TRUE(contains(resumed.output, "Resuming from " + checkpoint_dir(out, 10)))
        << resumed.output;
    expect_same_run(reference, out, 20, 4);
  }
}

// With Mixup/CutMix (their draws keyed by the step, the images swapped between the ranks) on
// top of every other fine-tuning option (integrity_training), resuming mid-epoch and across an
// epoch's end is bit-identical on 1 and 2 ranks.
TEST_F(CheckpointTest, ResumingWithMixupIsBitIdentical) {
  Training training = integrity_training();
  training.mixup = "mixup_alpha: 0.8 cutmix_alpha: 1 prob: 0.8 mode: ELEM";
  training.name = "_mixup";
  const std::string config = config_path(training);
  for (int ranks : {1, 2}) {
    SCOPED_TRACE(std::to_string(ranks) + " rank(s)");
    const std::string reference = uninterrupted(training, ranks);
    for (int step : {5, 15}) {
      const std::string out =
          copy_of(reference, "mixup" + std::to_string(ranks) + "_" + std::to_string(step));
      fs::remove(out + "/model.safetensors");
      const Result resumed =
          train(ranks, config, out, "--resume " + shell_quote(checkpoint_dir(out, step)));
      ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
      expect_same_run(reference, out, 20, 4);
    }
  }
}

TEST_F(CheckpointTest, TruncatedNewestCheckpointFallsBackToThePreviousOne) {
  const std::string config = config_path(integrity_training());
  const std::string reference = uninterrupted(integrity_training(), 1);
  const std::string out = copy_of(reference, "truncated");
  const std::string newest = checkpoint_dir(out, 20);
  truncate_file(newest + "/optimizer.safetensors");

  const Result explicit_resume = train(1, config, out, "--resume " + shell_quote(newest));
  EXPECT_EQ(explicit_resume.exit_code, kExitInputError) << explicit_resume.output;
  EXPECT_TRUE(contains(explicit_resume.output, "optimizer.safetensors")) << explicit_resume.output;
  EXPECT_TRUE(contains(explicit_resume.output, "truncated")) << explicit_resume.output;

  const Result resumed = train(1, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "Cannot resume from " + newest)) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "truncated")) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "Resuming from " + checkpoint_dir(out, 15)))
      << resumed.output;
  expect_earlier_checkpoints_intact(reference, out);
  expect_same_run(reference, out, 20, 4);
}

TEST_F(CheckpointTest, CheckpointOfAnotherModelIsRefused) {
  const std::string config = config_path(integrity_training());
  const std::string reference = uninterrupted(integrity_training(), 1);
  const std::string out = copy_of(reference, "other_model");
  const auto before = snapshot(out);
  for (const char* change : {"--set model.embed_dim=32", "--set model.attention=GQA"}) {
    for (const std::string& resume : {std::string("auto"), checkpoint_dir(out, 20)}) {
      const Result result = train(1, config, out, "--resume " + resume + " " + change);
      EXPECT_EQ(result.exit_code, kExitInputError) << change << "\n" << result.output;
      EXPECT_TRUE(contains(result.output, "holds a different model")) << change << "\n"
                                                                      << result.output;
    }
  }
  EXPECT_EQ(compare_snapshots(before, snapshot(out)), "");
}

// Makes dir unwritable even for root (chattr +i), or by its mode for anyone else. Returns the
// command that undoes it, or "" when neither works here.
std::string make_unwritable(const std::string& dir) {
  std::string undo;
  if (getuid() == 0) {
    if (tests::run_command("chattr +i " + shell_quote(dir)) != 0) return "";
    undo = "chattr -i " + shell_quote(dir);
  } else {
    if (tests::run_command("chmod 0555 " + shell_quote(dir)) != 0) return "";
    undo = "chmod 0755 " + shell_quote(dir);
  }
  // It must really refuse a new entry.
  if (tests::run_command("mkdir " + shell_quote(dir + "/probe")) == 0) {
    tests::run_command(undo);
    tests::run_command("rmdir " + shell_quote(dir + "/probe"));
    return "";
  }
  return undo;
}

TEST_F(CheckpointTest, UnwritableCheckpointDirectoryFailsAndKeepsTheCheckpoints) {
  const std::string config = config_path(integrity_training());
  const std::string reference = uninterrupted(integrity_training(), 1);
  const std::string out = copy_of(reference, "unwritable");
  const std::string checkpoints = out + "/checkpoints";
  const auto before = snapshot(checkpoints);
  const std::string undo = make_unwritable(checkpoints);
  if (undo.empty()) GTEST_SKIP() << "cannot make a directory unwritable here";
  const ScopeGuard restore([&] { tests::run_command(undo); });

  const Result result = train(1, config, out, "--resume auto --set train.max_steps=30");
  EXPECT_EQ(result.exit_code, kExitFailure) << result.output;
  EXPECT_TRUE(contains(result.output, checkpoints)) << result.output;
  EXPECT_TRUE(contains(result.output, "Resuming from " + checkpoint_dir(out, 20))) << result.output;
  EXPECT_EQ(compare_snapshots(before, snapshot(checkpoints)), "");
  EXPECT_EQ(latest_checkpoint(out), "step_00000020");
}

// Bytes of the pages a file takes on tmpfs.
uintmax_t pages_of(const std::string& path) {
  constexpr uintmax_t kPage = 4096;
  return (fs::file_size(path) + kPage - 1) / kPage * kPage;
}

TEST_F(CheckpointTest, FullDiskFailsCleanlyAndKeepsTheCheckpoints) {
  const std::string config = config_path(integrity_training());
  const std::string reference = uninterrupted(integrity_training(), 1);
  // Room for the metrics, two checkpoints and half of a third.
  uintmax_t checkpoint_bytes = 0;
  for (const char* file : {"model.safetensors", "optimizer.safetensors", "state.pbtxt"}) {
    checkpoint_bytes += pages_of(checkpoint_dir(reference, 5) + "/" + file);
  }
  const uintmax_t size = pages_of(reference + "/metrics.jsonl") + 3 * 4096 + 2 * checkpoint_bytes +
                         checkpoint_bytes / 2;
  const std::string mount = test_dir_ + "/tmpfs";
  fs::create_directories(mount);
  if (tests::run_command("mount -t tmpfs -o size=" + std::to_string(size / 1024) + "k tmpfs " +
                         shell_quote(mount)) != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here";
  }
  const ScopeGuard unmount([&] {
    if (tests::run_command("umount " + shell_quote(mount)) != 0) {
      tests::run_command("umount -l " + shell_quote(mount));
    }
  });
  const std::string out = mount + "/out";
  const Result result = train(1, config, out);
  EXPECT_EQ(result.exit_code, kExitFailure) << result.output;
  EXPECT_TRUE(contains(result.output, out + "/checkpoints/")) << result.output;
  EXPECT_TRUE(contains(result.output, "No space left on device")) << result.output;
  EXPECT_FALSE(tests::file_exists(out + "/model.safetensors"));
  // The checkpoints written before the disk filled up are complete and the reference's.
  EXPECT_EQ(latest_checkpoint(out), "step_00000010") << result.output;
  for (int step : {5, 10}) {
    EXPECT_EQ(compare_snapshots(snapshot(checkpoint_dir(reference, step)),
                                snapshot(checkpoint_dir(out, step))),
              "")
        << "step " << step;
  }
  EXPECT_FALSE(tests::file_exists(checkpoint_dir(out, 15)));
  // The failed checkpoint leaves nothing behind to fill the disk further (its temporary
  // directory would never be removed: pruning and later writes only see step_* directories).
  EXPECT_EQ(join(checkpoint_entries(out)), "latest step_00000005 step_00000010")
      << "the failed write left its partial temporary directory behind";

  // The newest complete one resumes (from a copy outside the full disk) to the same end.
  const std::string copy = test_dir_ + "/step_00000010";
  ASSERT_EQ(
      tests::run_command("cp -a " + shell_quote(checkpoint_dir(out, 10)) + " " + shell_quote(copy)),
      0);
  const std::string continued = test_dir_ + "/continued";
  const Result resumed = train(1, config, continued, "--resume " + shell_quote(copy));
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(tests::read_file(continued + "/model.safetensors") ==
              tests::read_file(reference + "/model.safetensors"));
}

// ---------------------------------------------------------------------------------------------
// 4. keep_last

TEST_F(CheckpointTest, KeepLastKeepsTheNewest) {
  Training training = integrity_training();
  training.keep_last = 2;
  const std::string out = test_dir_ + "/out";
  const Result result = train(1, config_path(training), out);
  ASSERT_EQ(result.exit_code, kExitOk) << result.output;
  EXPECT_EQ(join(checkpoint_entries(out)), "latest step_00000015 step_00000020");
  EXPECT_EQ(latest_checkpoint(out), "step_00000020");
  EXPECT_EQ(complete_checkpoint_step(checkpoint_dir(out, 15)), 15);
  EXPECT_EQ(complete_checkpoint_step(checkpoint_dir(out, 20)), 20);
}

// ---------------------------------------------------------------------------------------------
// 5. Another world size

TEST_F(CheckpointTest, ResumingOnAnotherWorldSizeWarns) {
  const std::string config = config_path(integrity_training());
  const std::string reference = uninterrupted(integrity_training(), 1);
  const std::string out = copy_of(reference, "two_ranks");
  const Result result =
      train(2, config, out,
            "--resume " + shell_quote(checkpoint_dir(out, 10)) + " --set train.max_steps=20");
  ASSERT_EQ(result.exit_code, kExitOk) << result.output;
  EXPECT_TRUE(contains(result.output, "Resuming from " + checkpoint_dir(out, 10))) << result.output;
  EXPECT_TRUE(contains(result.output, "written by 1 rank(s), this run has 2")) << result.output;
  EXPECT_TRUE(contains(result.output, "not be bit-identical")) << result.output;
  EXPECT_EQ(train_steps(metrics_records(out)), (std::vector<int64_t>{4, 8, 12, 16, 20}));
  EXPECT_EQ(latest_checkpoint(out), "step_00000020");
}

// ---------------------------------------------------------------------------------------------
// 6. ZeRO-1: sharded optimizer state

// 20 steps with checkpoints at 10 and 20, DGQA's allocation carried between steps, the
// fine-tuning options (layer-wise LR decay among them) and a weight EMA.
Training zero_training(bool zero) {
  Training training = integrity_training();
  training.every_steps = 10;
  training.weight_ema = true;
  training.zero = zero;
  return training;
}

std::string shard_file(const std::string& dir, int index, int count) {
  char name[64];
  std::snprintf(name, sizeof(name), "/optimizer.shard-%05d-of-%05d.safetensors", index, count);
  return dir + name;
}

// Resumes the copy of a run in `out` from its checkpoint at step 10 on `ranks` ranks with `args`.
Result resume_at_10(const std::string& config, const std::string& out, int ranks,
                    const std::string& args) {
  fs::remove(out + "/model.safetensors");
  fs::remove(out + "/model_ema.safetensors");
  return train(ranks, config, out, "--resume " + shell_quote(checkpoint_dir(out, 10)) + " " + args);
}

class ZeroCheckpointTest : public CheckpointTest {
 protected:
  // A copy of `reference` resumed from step 10 on `ranks` ranks with `args`; expects it to run
  // to the end with the weights and weight EMA of `reference` to rounding.
  std::string expect_resumes_to_rounding(const std::string& reference, int ranks,
                                         const std::string& args, const std::string& name) {
    const std::string out = copy_of(reference, name);
    const Result resumed = resume_at_10(config_path(zero_training(true)), out, ranks, args);
    EXPECT_EQ(resumed.exit_code, kExitOk) << resumed.output;
    EXPECT_TRUE(contains(resumed.output, "Resuming from " + checkpoint_dir(out, 10)))
        << resumed.output;
    const double lr = tests::FixtureConfig().lr;
    for (const char* file : {"/model.safetensors", "/model_ema.safetensors"}) {
      tests::expect_weights_equal_to_rounding(out + file, reference + file, lr, name + file);
    }
    EXPECT_EQ(train_steps(metrics_records(out)), train_steps(metrics_records(reference)));
    return out;
  }
};

TEST_F(ZeroCheckpointTest, ShardsResumeBitIdenticallyOnTheSameWorldSize) {
  const std::string reference = uninterrupted(zero_training(true), 2);
  for (int step : {10, 20}) {
    for (int index : {1, 2}) {
      EXPECT_TRUE(tests::file_exists(shard_file(checkpoint_dir(reference, step), index, 2)));
    }
    EXPECT_FALSE(tests::file_exists(shard_file(checkpoint_dir(reference, step), 1, 1)));
  }
  const std::string out = copy_of(reference, "same_world");
  const Result resumed = resume_at_10(config_path(zero_training(true)), out, 2, "");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "Resuming from " + checkpoint_dir(out, 10)))
      << resumed.output;
  expect_same_run(reference, out, 20, 4);
}

// Re-sharded over 4 ranks, gathered into one rank's plain optimizer file, and a plain checkpoint
// sharded over 2 ranks: each continues the run to its uninterrupted weights, to rounding.
TEST_F(ZeroCheckpointTest, ShardsResumeOnAnotherWorldSizeAndWithoutZero) {
  const std::string reference = uninterrupted(zero_training(true), 2);
  const std::string four = expect_resumes_to_rounding(reference, 4, "", "four_ranks");
  for (int index = 1; index <= 4; ++index) {
    EXPECT_TRUE(tests::file_exists(shard_file(checkpoint_dir(four, 20), index, 4))) << index;
  }
  const std::string one =
      expect_resumes_to_rounding(reference, 1, "--set dist.zero_stage=0", "one_rank_plain");
  EXPECT_FALSE(tests::file_exists(shard_file(checkpoint_dir(one, 20), 1, 1)));

  const std::string plain = uninterrupted(zero_training(false), 1);
  expect_resumes_to_rounding(plain, 2, "--set dist.zero_stage=1", "plain_to_zero");
}

TEST_F(ZeroCheckpointTest, DamagedOrMissingShardIsRefusedByName) {
  const std::string config = config_path(zero_training(true));
  const std::string reference = uninterrupted(zero_training(true), 2);
  const std::string out = copy_of(reference, "damaged_shard");
  const std::string damaged = shard_file(checkpoint_dir(out, 20), 2, 2);
  flip_byte_in_the_middle(damaged);
  const Result on_damaged =
      train(2, config, out, "--resume " + shell_quote(checkpoint_dir(out, 20)));
  EXPECT_EQ(on_damaged.exit_code, kExitInputError) << on_damaged.output;
  EXPECT_TRUE(contains(on_damaged.output,
                       "optimizer.shard-00002-of-00002.safetensors fails its "
                       "checksum"))
      << on_damaged.output;

  const std::string missing = shard_file(checkpoint_dir(out, 10), 1, 2);
  fs::remove(missing);
  const Result on_missing =
      train(2, config, out, "--resume " + shell_quote(checkpoint_dir(out, 10)));
  EXPECT_EQ(on_missing.exit_code, kExitInputError) << on_missing.output;
  EXPECT_TRUE(contains(on_missing.output, missing)) << on_missing.output;

  const tests::DgqaRun inspected =
      tests::run_dgqa("inspect --json " + shell_quote(checkpoint_dir(out, 20)), test_dir_);
  const json report = json::parse(inspected.out);
  EXPECT_EQ(report.value("sound", true), false) << inspected.out;
  EXPECT_TRUE(contains(report["problems"].dump(), "optimizer.shard-00002-of-00002.safetensors"))
      << inspected.out;
}

// A manifest whose ranges leave a gap is refused, naming the field, even with its checksum
// line made to fit.
TEST_F(ZeroCheckpointTest, ManifestThatDoesNotCoverTheBufferIsRefused) {
  const std::string config = config_path(zero_training(true));
  const std::string out = copy_of(uninterrupted(zero_training(true), 2), "bad_manifest");
  const std::string state_path = checkpoint_dir(out, 20) + "/state.pbtxt";
  std::string body = tests::state_body(tests::read_file(state_path));
  const size_t end = body.find("end: ", body.find("optimizer_shards"));
  ASSERT_NE(end, std::string::npos) << body;
  body.replace(end, 5, "end: 1");  // the first shard ends at 1 followed by its digits
  tests::write_file(state_path, tests::sealed_state(body));
  const Result result = train(2, config, out, "--resume " + shell_quote(checkpoint_dir(out, 20)));
  EXPECT_EQ(result.exit_code, kExitInputError) << result.output;
  EXPECT_TRUE(contains(result.output, "optimizer_shards[0]")) << result.output;
}

TEST_F(ZeroCheckpointTest, InspectShowsTheShards) {
  const std::string dir = checkpoint_dir(uninterrupted(zero_training(true), 2), 20);
  const tests::DgqaRun inspected = tests::run_dgqa("inspect --json " + shell_quote(dir), test_dir_);
  ASSERT_EQ(inspected.exit_code, kExitOk) << inspected.err;
  const json report = json::parse(inspected.out);
  EXPECT_EQ(report.value("sound", false), true) << inspected.out;
  const json& checkpoint = report["checkpoint"];
  ASSERT_EQ(checkpoint["optimizer_shards"].size(), 2u) << inspected.out;
  EXPECT_EQ(checkpoint["optimizer_shards"][0].value("begin", -1), 0);
  EXPECT_EQ(checkpoint["optimizer_shards"][0].value("end", -1),
            checkpoint["optimizer_shards"][1].value("begin", -2));
  EXPECT_EQ(checkpoint["optimizer_shards"][1].value("file", ""),
            "optimizer.shard-00002-of-00002.safetensors");
  ASSERT_EQ(checkpoint["files"].size(), 4u);
  EXPECT_EQ(checkpoint.value("checksums_hold", false), true);
  const tests::DgqaRun text = tests::run_dgqa("inspect " + shell_quote(dir), test_dir_);
  EXPECT_TRUE(contains(text.out, "optimizer shards")) << text.out;
}

}  // namespace
}  // namespace dgqa
