// Checkpoints, resuming and preemption end to end (docs/design.md §6): a run killed after a
// checkpoint (also during its final evaluation, or while writing one) and resumed with
// --resume auto continues bit-identically, on 1 rank and under mpirun; SIGTERM/SIGUSR1 stop a
// run with a complete checkpoint and exit code 75; damaged, truncated, mismatched, unwritable and
// full-disk checkpoints are refused or reported without harming the earlier ones; keep_last
// prunes; another world size resumes with a warning.
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
using tests::ShellQuote;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitInputError = 2;
constexpr int kExitPreempted = 75;

// How dgqa is started for a run of `ranks` ranks: directly, or under mpirun.
std::string Launcher(int ranks) {
  return ranks == 1 ? "" : tests::MpirunPrefix(ranks);
}

// No test may hang: every run of dgqa is killed after this long.
std::string Timeout() {
  return "timeout -s KILL 120 ";
}

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

Result Run(const std::string& command) {
  Result result;
  result.exit_code = tests::RunCommand(command, &result.output);
  return result;
}

// `dgqa train --config CONFIG --out OUT ARGS` on `ranks` ranks.
Result Train(int ranks, const std::string& config, const std::string& out,
             const std::string& args = "") {
  return Run(Timeout() + Launcher(ranks) + DGQA_BINARY + " train --config " + ShellQuote(config) +
             " --out " + ShellQuote(out) + " " + args);
}

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string CheckpointDir(const std::string& out, int step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step_%08d", step);
  return out + "/checkpoints/" + name;
}

std::string Latest(const std::string& out) {
  const std::string path = out + "/checkpoints/latest";
  return tests::FileExists(path) ? tests::ReadFile(path) : "";
}

// The records of metrics.jsonl in order, without the wall-clock throughput.
std::vector<json> Records(const std::string& out) {
  std::vector<json> records;
  for (const std::string& line : tests::Lines(tests::ReadFile(out + "/metrics.jsonl"))) {
    json record = json::parse(line);
    record.erase("images_per_sec");
    records.push_back(std::move(record));
  }
  return records;
}

// "" when the two runs logged the same records; else the first difference.
std::string CompareRecords(const std::vector<json>& expected, const std::vector<json>& actual) {
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

std::vector<int64_t> TrainSteps(const std::vector<json>& records) {
  std::vector<int64_t> steps;
  for (const json& record : records) {
    if (record.at("kind") == "train") steps.push_back(record.at("step"));
  }
  return steps;
}

// Every file and directory under dir (relative path -> content; directories map to "<dir>").
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const std::string name = fs::relative(entry.path(), dir).string();
    files[name] = entry.is_directory() ? "<dir>" : tests::ReadFile(entry.path().string());
  }
  return files;
}

// "" when the snapshots agree; else what differs.
std::string CompareSnapshots(const std::map<std::string, std::string>& expected,
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
std::vector<std::string> CheckpointEntries(const std::string& out) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(out + "/checkpoints")) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string Join(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : " ") + name;
  return text;
}

// Checks that a checkpoint directory holds the three files, and returns its step (-1 if not).
int64_t CompleteCheckpointStep(const std::string& dir) {
  for (const char* file : {"state.pbtxt", "model.safetensors", "optimizer.safetensors"}) {
    if (!tests::FileExists(dir + "/" + file)) return -1;
  }
  for (const std::string& line : tests::Lines(tests::ReadFile(dir + "/state.pbtxt"))) {
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

void FlipByteInTheMiddle(const std::string& path) {
  std::string bytes = tests::ReadFile(path);
  ASSERT_GT(bytes.size(), 0u);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
  tests::WriteFile(path, bytes);
}

void Truncate(const std::string& path) {
  fs::resize_file(path, fs::file_size(path) / 2);
}

struct Training {
  std::string scheme = "DGQA_EMA";
  int max_steps = 30;
  int every_steps = 15;
  int keep_last = 3;
  bool slow = true;  // evaluate on the test split after every step
};

// What the tests share, made on first use and removed when the program ends: the datasets, the
// configs and the uninterrupted runs that interrupted ones are compared with.
struct Shared {
  std::string dir = tests::MakeTempDir("dgqa_checkpoint_");
  std::optional<tests::FixtureDataset> dataset;
  std::map<std::string, std::string> references;  // config and ranks -> output directory
};

Shared* shared = nullptr;

class SharedCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    if (shared == nullptr) return;
    tests::RunCommand("rm -rf " + ShellQuote(shared->dir));
    delete shared;
    shared = nullptr;
  }
};

::testing::Environment* const kSharedCleanup =
    ::testing::AddGlobalTestEnvironment(new SharedCleanup);

Shared& GetShared() {
  if (shared == nullptr) shared = new Shared;
  return *shared;
}

const tests::FixtureDataset& Dataset() {
  Shared& state = GetShared();
  if (state.dataset) return *state.dataset;
  tests::FixtureDatasetOptions options;
  options.train_count = 100;  // 12 steps of 8 per epoch: the runs cross epochs
  // Evaluating 3000 images after every step makes a step slow enough to interrupt.
  options.test_count = 3000;
  const std::string dir = state.dir + "/data";
  fs::create_directories(dir);
  state.dataset = tests::WriteFixtureDataset(dir, options);
  return *state.dataset;
}

// The config file of a training run (written on first use).
std::string Config(const Training& training) {
  tests::FixtureConfig config;
  config.attention = training.scheme;
  config.dgqa_window = 3;  // DGQA's cache and allocation carry over between steps
  config.max_steps = training.max_steps;
  config.eval_every_steps = training.slow ? 1 : 0;
  config.eval_batch_size = 16;
  config.extra = "checkpoint { every_steps: " + std::to_string(training.every_steps) +
                 " keep_last: " + std::to_string(training.keep_last) +
                 " }\n"
                 "dist { verify_replicas: true }\n";
  const std::string name = training.scheme + "_" + std::to_string(training.max_steps) + "_" +
                           std::to_string(training.every_steps) + "_" +
                           std::to_string(training.keep_last) + (training.slow ? "_slow" : "");
  const std::string path = GetShared().dir + "/" + name + ".pbtxt";
  if (!tests::FileExists(path)) {
    tests::WriteFixtureConfig(path, Dataset(), config);
  }
  return path;
}

// The output directory of an uninterrupted run (made on first use; callers only read it).
std::string Uninterrupted(const Training& training, int ranks) {
  const std::string config = Config(training);
  const std::string key = config + " " + std::to_string(ranks);
  Shared& state = GetShared();
  const auto found = state.references.find(key);
  if (found != state.references.end()) return found->second;
  const std::string out = state.dir + "/reference" + std::to_string(state.references.size());
  const Result result = Train(ranks, config, out);
  EXPECT_EQ(result.exit_code, kExitOk) << result.output;
  state.references[key] = out;
  return out;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "." + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    test_dir_ = GetShared().dir + "/" + name;
    fs::create_directories(test_dir_);
  }

  // A copy of an output directory for a test to change.
  std::string CopyOf(const std::string& out, const std::string& name) {
    const std::string copy = test_dir_ + "/" + name;
    EXPECT_EQ(tests::RunCommand("cp -a " + ShellQuote(out) + " " + ShellQuote(copy)), 0);
    return copy;
  }

  std::string test_dir_;
};

// Expects the run in `out` to have logged and written exactly what the uninterrupted `reference`
// did: every metrics record but the throughput, the final weights, and the last checkpoint.
void ExpectSameRun(const std::string& reference, const std::string& out, int last_step) {
  const std::vector<json> expected = Records(reference);
  const std::vector<json> actual = Records(out);
  EXPECT_EQ(CompareRecords(expected, actual), "");
  std::vector<int64_t> all_steps;
  for (int step = 1; step <= last_step; ++step) all_steps.push_back(step);
  EXPECT_EQ(TrainSteps(actual), all_steps);
  EXPECT_TRUE(tests::ReadFile(out + "/model.safetensors") ==
              tests::ReadFile(reference + "/model.safetensors"))
      << out << "/model.safetensors differs from the uninterrupted run's";
  const std::string last = CheckpointDir(out, last_step);
  for (const char* file : {"model.safetensors", "optimizer.safetensors", "state.pbtxt"}) {
    EXPECT_TRUE(tests::ReadFile(last + "/" + file) ==
                tests::ReadFile(CheckpointDir(reference, last_step) + "/" + file))
        << last << "/" << file << " differs from the uninterrupted run's";
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Killed after a checkpoint, resumed: bit-identical to an uninterrupted run.

// Starts a run and sends SIGKILL as soon as `latest` names the checkpoint of `step`: to the dgqa
// process, or to one rank of an MPI job (mpirun then ends the job). Reports "killed" when the
// signal was sent, "status=S" and the job's output.
std::string KillAfterCheckpoint(int ranks, const std::string& config, const std::string& out,
                                int step) {
  const std::string script =
      Launcher(ranks) + DGQA_BINARY + " train --config " + ShellQuote(config) + " --out " +
      ShellQuote(out) + " >" + ShellQuote(out + ".log") +
      " 2>&1 & launcher=$!\n"
      "for i in $(seq 12000); do\n"
      "  [ \"$(cat " +
      ShellQuote(out + "/checkpoints/latest") +
      " 2>/dev/null)\" = " + fs::path(CheckpointDir(out, step)).filename().string() +
      " ] && break\n"
      "  kill -0 $launcher 2>/dev/null || break\n"
      "  sleep 0.005\n"
      "done\n" +
      (ranks == 1 ? std::string("victim=$launcher\n")
                  : std::string("victim=$(pgrep -P $launcher -f 'dgqa train' | tail -n 1)\n")) +
      "[ -n \"$victim\" ] && kill -KILL $victim && echo killed\n"
      "wait $launcher; echo status=$?\n";
  tests::WriteFile(out + ".sh", script);
  std::string report;
  tests::RunCommand(Timeout() + "bash " + ShellQuote(out + ".sh"), &report);
  return report + "\n--- job output:\n" + tests::ReadFile(out + ".log");
}

struct KillCase {
  const char* scheme;
  int ranks;
};

void PrintTo(const KillCase& kill, std::ostream* out) {
  *out << kill.scheme << " on " << kill.ranks << " rank(s)";
}

class KillResumeTest : public CheckpointTest, public ::testing::WithParamInterface<KillCase> {};

TEST_P(KillResumeTest, ResumeAfterKillIsBitIdentical) {
  const KillCase kill = GetParam();
  Training training;
  training.scheme = kill.scheme;
  const std::string config = Config(training);
  const std::string reference = Uninterrupted(training, kill.ranks);
  const std::string out = test_dir_ + "/out";

  const std::string report = KillAfterCheckpoint(kill.ranks, config, out, 15);
  ASSERT_TRUE(Contains(report, "killed\n")) << report;
  EXPECT_FALSE(Contains(report, "status=0\n")) << report;
  // The kill came between the two checkpoints: training did not finish.
  ASSERT_EQ(Latest(out), "step_00000015") << report;
  ASSERT_FALSE(tests::FileExists(out + "/model.safetensors")) << report;
  ASSERT_EQ(CompleteCheckpointStep(CheckpointDir(out, 15)), 15);

  const Result resumed = Train(kill.ranks, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(Contains(resumed.output, "Resuming from " + CheckpointDir(out, 15)))
      << resumed.output;
  EXPECT_FALSE(Contains(resumed.output, "bit-identical")) << resumed.output;
  ExpectSameRun(reference, out, 30);
  EXPECT_EQ(Latest(out), "step_00000030");
}

INSTANTIATE_TEST_SUITE_P(SchemesAndRanks, KillResumeTest,
                         ::testing::Values(KillCase{"DGQA_EMA", 1}, KillCase{"DGQA_EMA", 2},
                                           KillCase{"PGQA", 1}, KillCase{"PGQA", 2}),
                         [](const auto& test_param) {
                           return std::string(test_param.param.scheme) + "_" +
                                  std::to_string(test_param.param.ranks) + "rank";
                         });

// The checkpoint of the last step is written after the evaluation that ends training, so a run
// killed before that checkpoint repeats the evaluation on resuming, and resuming a finished run
// (its last checkpoint already holds that evaluation) adds nothing.
TEST_F(CheckpointTest, ResumingAFinishedRunAddsNothing) {
  Training training;
  training.max_steps = 10;  // within the first epoch: the only evaluation is the final one
  training.every_steps = 5;
  training.slow = false;
  const std::string config = Config(training);
  const std::string out = test_dir_ + "/out";
  const Result first = Train(1, config, out, "");
  ASSERT_EQ(first.exit_code, kExitOk) << first.output;
  ASSERT_EQ(Latest(out), "step_00000010");
  const std::string metrics = tests::ReadFile(out + "/metrics.jsonl");
  const std::string model = tests::ReadFile(out + "/model.safetensors");
  ASSERT_EQ(tests::CountLinesContaining(metrics, "\"kind\":\"eval\""), 1);

  const Result resumed = Train(1, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(Contains(resumed.output, "Resuming from " + CheckpointDir(out, 10)))
      << resumed.output;
  EXPECT_EQ(tests::ReadFile(out + "/metrics.jsonl"), metrics);
  EXPECT_TRUE(tests::ReadFile(out + "/model.safetensors") == model);
}

// ---------------------------------------------------------------------------------------------
// 2. Asked to stop: every rank finishes its step, one checkpoint, exit 75; resuming continues.

// Starts a run, waits until it has logged `after_steps` train lines, sends `signal` to every
// dgqa process of it (or only to the last rank), and reports the lines "signalled N" and
// "status=S" and the job's output.
std::string SignalRun(int ranks, const std::string& config, const std::string& out,
                      const std::string& signal, int after_steps, bool only_last_rank = false) {
  const std::string victims = ranks == 1
                                  ? "$launcher"
                                  : "$(pgrep -P $launcher -f 'dgqa train'" +
                                        std::string(only_last_rank ? " | tail -n 1" : "") + ")";
  const std::string script =
      Launcher(ranks) + DGQA_BINARY + " train --config " + ShellQuote(config) + " --out " +
      ShellQuote(out) + " >" + ShellQuote(out + ".log") +
      " 2>&1 & launcher=$!\n"
      "for i in $(seq 12000); do\n"
      "  [ \"$(grep -c '\"kind\":\"train\"' " +
      ShellQuote(out + "/metrics.jsonl") + " 2>/dev/null)\" -ge " + std::to_string(after_steps) +
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
  tests::WriteFile(out + ".sh", script);
  std::string report;
  tests::RunCommand(Timeout() + "bash " + ShellQuote(out + ".sh"), &report);
  return report + "\n--- job output:\n" + tests::ReadFile(out + ".log");
}

// Expects what a stop on request leaves: a complete checkpoint named by `latest`, after a step
// in (0, max_steps), and no temporary directory. Returns its step.
int64_t ExpectStoppedCleanly(const std::string& out, int max_steps, const std::string& report) {
  EXPECT_TRUE(Contains(report, "status=" + std::to_string(kExitPreempted) + "\n")) << report;
  EXPECT_TRUE(Contains(report, "stopped on request")) << report;
  const std::string latest = Latest(out);
  EXPECT_EQ(latest.rfind("step_", 0), 0u) << report;
  const int64_t step = CompleteCheckpointStep(out + "/checkpoints/" + latest);
  EXPECT_GT(step, 0) << report;
  EXPECT_LT(step, max_steps) << report;
  EXPECT_EQ(latest, fs::path(CheckpointDir(out, static_cast<int>(step))).filename().string());
  for (const std::string& name : CheckpointEntries(out)) {
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << "left behind: " << name;
  }
  EXPECT_FALSE(tests::FileExists(out + "/model.safetensors")) << report;
  return step;
}

TEST_F(CheckpointTest, SigtermStopsAllRanksWithACheckpointAndExit75) {
  const Training training;  // the killed runs' (their uninterrupted runs are shared)
  const std::string config = Config(training);
  const std::string reference = Uninterrupted(training, 2);
  const std::string out = test_dir_ + "/out";
  const std::string report = SignalRun(2, config, out, "TERM", 3);
  ASSERT_TRUE(Contains(report, "signalled 2\n")) << report;
  const int64_t step = ExpectStoppedCleanly(out, 30, report);
  EXPECT_GE(step, 3);
  EXPECT_TRUE(Contains(report, "stopped on request after step " + std::to_string(step))) << report;

  const Result resumed = Train(2, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(
      Contains(resumed.output, "Resuming from " + CheckpointDir(out, static_cast<int>(step))))
      << resumed.output;
  ExpectSameRun(reference, out, 30);
}

TEST_F(CheckpointTest, SigtermToOneRankStopsEveryRank) {
  const Training training;
  const std::string out = test_dir_ + "/out";
  const std::string report = SignalRun(2, Config(training), out, "TERM", 3, true);
  ASSERT_TRUE(Contains(report, "signalled 1\n")) << report;
  ExpectStoppedCleanly(out, 30, report);
}

TEST_F(CheckpointTest, Sigusr1StopsOneRankWithACheckpointAndExit75) {
  const Training training;
  const std::string config = Config(training);
  const std::string reference = Uninterrupted(training, 1);
  const std::string out = test_dir_ + "/out";
  const std::string report = SignalRun(1, config, out, "USR1", 3);
  ASSERT_TRUE(Contains(report, "signalled 1\n")) << report;
  const int64_t step = ExpectStoppedCleanly(out, 30, report);

  const Result resumed = Train(1, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(
      Contains(resumed.output, "Resuming from " + CheckpointDir(out, static_cast<int>(step))))
      << resumed.output;
  ExpectSameRun(reference, out, 30);
}

// ---------------------------------------------------------------------------------------------
// 3. Integrity: damaged, truncated, mismatched, unwritable, full.

// One rank, 20 steps, a checkpoint every 5, all kept: steps 5, 10, 15 and 20.
Training IntegrityTraining() {
  Training training;
  training.max_steps = 20;
  training.every_steps = 5;
  training.keep_last = 0;
  training.slow = false;
  return training;
}

// The checkpoints before step 20 of `out` are those of the reference, byte for byte.
void ExpectEarlierCheckpointsIntact(const std::string& reference, const std::string& out) {
  for (int step : {5, 10, 15}) {
    EXPECT_EQ(CompareSnapshots(Snapshot(CheckpointDir(reference, step)),
                               Snapshot(CheckpointDir(out, step))),
              "")
        << "step " << step;
  }
}

TEST_F(CheckpointTest, DamagedNewestCheckpointFallsBackToThePreviousOne) {
  const std::string config = Config(IntegrityTraining());
  const std::string reference = Uninterrupted(IntegrityTraining(), 1);
  ASSERT_EQ(Join(CheckpointEntries(reference)),
            "latest step_00000005 step_00000010 step_00000015 step_00000020");
  const std::string out = CopyOf(reference, "damaged");
  const std::string newest = CheckpointDir(out, 20);
  FlipByteInTheMiddle(newest + "/model.safetensors");

  const Result explicit_resume = Train(1, config, out, "--resume " + ShellQuote(newest));
  EXPECT_EQ(explicit_resume.exit_code, kExitInputError) << explicit_resume.output;
  EXPECT_TRUE(Contains(explicit_resume.output, "model.safetensors")) << explicit_resume.output;
  EXPECT_TRUE(Contains(explicit_resume.output, "checksum")) << explicit_resume.output;

  const std::string missing = CheckpointDir(out, 99);
  const Result missing_resume = Train(1, config, out, "--resume " + ShellQuote(missing));
  EXPECT_EQ(missing_resume.exit_code, kExitInputError) << missing_resume.output;
  EXPECT_TRUE(Contains(missing_resume.output, missing)) << missing_resume.output;

  const Result resumed = Train(1, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(Contains(resumed.output, "Cannot resume from " + newest)) << resumed.output;
  EXPECT_TRUE(Contains(resumed.output, "checksum")) << resumed.output;
  EXPECT_TRUE(Contains(resumed.output, "Resuming from " + CheckpointDir(out, 15)))
      << resumed.output;
  ExpectEarlierCheckpointsIntact(reference, out);
  ExpectSameRun(reference, out, 20);
}

// `dgqa eval --checkpoint DIR` evaluates the checkpoint's weights (the same line as --init-from
// of its model.safetensors), also when DIR is the run's directory or its `latest`, and refuses a
// damaged checkpoint, as --resume does.
TEST_F(CheckpointTest, EvalOfACheckpointIsEvalOfItsWeights) {
  const std::string config = Config(IntegrityTraining());
  const std::string reference = Uninterrupted(IntegrityTraining(), 1);
  const std::string checkpoint = CheckpointDir(reference, 15);
  const std::string eval = Timeout() + DGQA_BINARY + " eval --config " + ShellQuote(config);
  const Result of_checkpoint = dgqa::Run(eval + " --checkpoint " + ShellQuote(checkpoint));
  ASSERT_EQ(of_checkpoint.exit_code, kExitOk) << of_checkpoint.output;
  EXPECT_TRUE(Contains(of_checkpoint.output, "Evaluating checkpoint " + checkpoint + " (step 15)"))
      << of_checkpoint.output;
  const Result of_weights =
      dgqa::Run(eval + " --init-from " + ShellQuote(checkpoint + "/model.safetensors"));
  ASSERT_EQ(of_weights.exit_code, kExitOk) << of_weights.output;
  // The JSON line each printed (the output holds the log lines too).
  auto json_line = [](const std::string& output) {
    std::string last;
    for (const std::string& line : tests::Lines(output)) {
      if (!line.empty() && line[0] == '{') last = line;
    }
    return last;
  };
  ASSERT_TRUE(Contains(json_line(of_weights.output), "\"top1\"")) << of_weights.output;
  EXPECT_EQ(json_line(of_checkpoint.output), json_line(of_weights.output));

  // The run's directory, its checkpoints/ and the file `latest` mean the checkpoint `latest`
  // names (step 20 here).
  const Result of_newest = dgqa::Run(
      eval + " --init-from " + ShellQuote(CheckpointDir(reference, 20) + "/model.safetensors"));
  ASSERT_EQ(of_newest.exit_code, kExitOk) << of_newest.output;
  for (const std::string& named :
       {reference, reference + "/checkpoints", reference + "/checkpoints/latest"}) {
    const Result of_named = dgqa::Run(eval + " --checkpoint " + ShellQuote(named));
    ASSERT_EQ(of_named.exit_code, kExitOk) << named << ":\n" << of_named.output;
    EXPECT_TRUE(Contains(of_named.output, "(step 20)")) << named << ":\n" << of_named.output;
    EXPECT_EQ(json_line(of_named.output), json_line(of_newest.output)) << named;
  }

  const std::string out = CopyOf(reference, "damaged_for_eval");
  FlipByteInTheMiddle(CheckpointDir(out, 15) + "/model.safetensors");
  const Result damaged = dgqa::Run(eval + " --checkpoint " + ShellQuote(CheckpointDir(out, 15)));
  EXPECT_EQ(damaged.exit_code, kExitInputError) << damaged.output;
  EXPECT_TRUE(Contains(damaged.output, "checksum")) << damaged.output;
}

// What a run killed while writing its step-20 checkpoint leaves: a partial temporary directory
// (and file) and `latest` naming step 15. --resume auto continues from step 15.
TEST_F(CheckpointTest, LeftoversOfAKilledCheckpointWriteAreIgnored) {
  const std::string config = Config(IntegrityTraining());
  const std::string reference = Uninterrupted(IntegrityTraining(), 1);
  const std::string out = CopyOf(reference, "killed_while_writing");
  const std::string checkpoints = out + "/checkpoints";
  const std::string temp = checkpoints + "/.step_00000020.tmp.99999";
  ASSERT_EQ(tests::RunCommand("mv " + ShellQuote(CheckpointDir(out, 20)) + " " + ShellQuote(temp)),
            0);
  fs::remove(temp + "/state.pbtxt");
  Truncate(temp + "/optimizer.safetensors");
  tests::WriteFile(checkpoints + "/latest", "step_00000015");
  tests::WriteFile(checkpoints + "/latest.tmp.99999", "step_000");
  fs::remove(out + "/model.safetensors");

  const Result resumed = Train(1, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(Contains(resumed.output, "Resuming from " + CheckpointDir(out, 15)))
      << resumed.output;
  ExpectEarlierCheckpointsIntact(reference, out);
  ExpectSameRun(reference, out, 20);
}

// Resuming from each checkpoint in turn: mid-epoch, at the end of an epoch, in a later epoch.
TEST_F(CheckpointTest, ResumingFromAnyCheckpointIsBitIdentical) {
  Training training = IntegrityTraining();
  training.every_steps = 6;  // 12 steps per epoch
  const std::string config = Config(training);
  const std::string reference = Uninterrupted(training, 1);
  ASSERT_EQ(Join(CheckpointEntries(reference)),
            "latest step_00000006 step_00000012 step_00000018 step_00000020");
  for (int step : {6, 12, 18}) {
    SCOPED_TRACE("resuming from step " + std::to_string(step));
    const std::string out = CopyOf(reference, "from" + std::to_string(step));
    fs::remove(out + "/model.safetensors");
    const Result resumed =
        Train(1, config, out, "--resume " + ShellQuote(CheckpointDir(out, step)));
    ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
    EXPECT_TRUE(Contains(resumed.output, "Resuming from " + CheckpointDir(out, step)))
        << resumed.output;
    ExpectSameRun(reference, out, 20);
  }
}

TEST_F(CheckpointTest, TruncatedNewestCheckpointFallsBackToThePreviousOne) {
  const std::string config = Config(IntegrityTraining());
  const std::string reference = Uninterrupted(IntegrityTraining(), 1);
  const std::string out = CopyOf(reference, "truncated");
  const std::string newest = CheckpointDir(out, 20);
  Truncate(newest + "/optimizer.safetensors");

  const Result explicit_resume = Train(1, config, out, "--resume " + ShellQuote(newest));
  EXPECT_EQ(explicit_resume.exit_code, kExitInputError) << explicit_resume.output;
  EXPECT_TRUE(Contains(explicit_resume.output, "optimizer.safetensors")) << explicit_resume.output;
  EXPECT_TRUE(Contains(explicit_resume.output, "truncated")) << explicit_resume.output;

  const Result resumed = Train(1, config, out, "--resume auto");
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(Contains(resumed.output, "Cannot resume from " + newest)) << resumed.output;
  EXPECT_TRUE(Contains(resumed.output, "truncated")) << resumed.output;
  EXPECT_TRUE(Contains(resumed.output, "Resuming from " + CheckpointDir(out, 15)))
      << resumed.output;
  ExpectEarlierCheckpointsIntact(reference, out);
  ExpectSameRun(reference, out, 20);
}

TEST_F(CheckpointTest, CheckpointOfAnotherModelIsRefused) {
  const std::string config = Config(IntegrityTraining());
  const std::string reference = Uninterrupted(IntegrityTraining(), 1);
  const std::string out = CopyOf(reference, "other_model");
  const auto before = Snapshot(out);
  for (const char* change : {"--set model.embed_dim=32", "--set model.attention=GQA"}) {
    for (const std::string& resume : {std::string("auto"), CheckpointDir(out, 20)}) {
      const Result result = Train(1, config, out, "--resume " + resume + " " + change);
      EXPECT_EQ(result.exit_code, kExitInputError) << change << "\n" << result.output;
      EXPECT_TRUE(Contains(result.output, "holds a different model")) << change << "\n"
                                                                      << result.output;
    }
  }
  EXPECT_EQ(CompareSnapshots(before, Snapshot(out)), "");
}

// Makes dir unwritable even for root (chattr +i), or by its mode for anyone else. Returns the
// command that undoes it, or "" when neither works here.
std::string MakeUnwritable(const std::string& dir) {
  std::string undo;
  if (getuid() == 0) {
    if (tests::RunCommand("chattr +i " + ShellQuote(dir)) != 0) return "";
    undo = "chattr -i " + ShellQuote(dir);
  } else {
    if (tests::RunCommand("chmod 0555 " + ShellQuote(dir)) != 0) return "";
    undo = "chmod 0755 " + ShellQuote(dir);
  }
  // It must really refuse a new entry.
  if (tests::RunCommand("mkdir " + ShellQuote(dir + "/probe")) == 0) {
    tests::RunCommand(undo);
    tests::RunCommand("rmdir " + ShellQuote(dir + "/probe"));
    return "";
  }
  return undo;
}

TEST_F(CheckpointTest, UnwritableCheckpointDirectoryFailsAndKeepsTheCheckpoints) {
  const std::string config = Config(IntegrityTraining());
  const std::string reference = Uninterrupted(IntegrityTraining(), 1);
  const std::string out = CopyOf(reference, "unwritable");
  const std::string checkpoints = out + "/checkpoints";
  const auto before = Snapshot(checkpoints);
  const std::string undo = MakeUnwritable(checkpoints);
  if (undo.empty()) GTEST_SKIP() << "cannot make a directory unwritable here";
  const ScopeGuard restore([&] { tests::RunCommand(undo); });

  const Result result = Train(1, config, out, "--resume auto --set train.max_steps=30");
  EXPECT_EQ(result.exit_code, kExitFailure) << result.output;
  EXPECT_TRUE(Contains(result.output, checkpoints)) << result.output;
  EXPECT_TRUE(Contains(result.output, "Resuming from " + CheckpointDir(out, 20))) << result.output;
  EXPECT_EQ(CompareSnapshots(before, Snapshot(checkpoints)), "");
  EXPECT_EQ(Latest(out), "step_00000020");
}

// Bytes of the pages a file takes on tmpfs.
uintmax_t PagesOf(const std::string& path) {
  constexpr uintmax_t kPage = 4096;
  return (fs::file_size(path) + kPage - 1) / kPage * kPage;
}

TEST_F(CheckpointTest, FullDiskFailsCleanlyAndKeepsTheCheckpoints) {
  const std::string config = Config(IntegrityTraining());
  const std::string reference = Uninterrupted(IntegrityTraining(), 1);
  // Room for the metrics, two checkpoints and half of a third.
  uintmax_t checkpoint_bytes = 0;
  for (const char* file : {"model.safetensors", "optimizer.safetensors", "state.pbtxt"}) {
    checkpoint_bytes += PagesOf(CheckpointDir(reference, 5) + "/" + file);
  }
  const uintmax_t size = PagesOf(reference + "/metrics.jsonl") + 3 * 4096 + 2 * checkpoint_bytes +
                         checkpoint_bytes / 2;
  const std::string mount = test_dir_ + "/tmpfs";
  fs::create_directories(mount);
  if (tests::RunCommand("mount -t tmpfs -o size=" + std::to_string(size / 1024) + "k tmpfs " +
                        ShellQuote(mount)) != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here";
  }
  const ScopeGuard unmount([&] {
    if (tests::RunCommand("umount " + ShellQuote(mount)) != 0) {
      tests::RunCommand("umount -l " + ShellQuote(mount));
    }
  });
  const std::string out = mount + "/out";
  const Result result = Train(1, config, out);
  EXPECT_EQ(result.exit_code, kExitFailure) << result.output;
  EXPECT_TRUE(Contains(result.output, out + "/checkpoints/")) << result.output;
  EXPECT_TRUE(Contains(result.output, "No space left on device")) << result.output;
  EXPECT_FALSE(tests::FileExists(out + "/model.safetensors"));
  // The checkpoints written before the disk filled up are complete and the reference's.
  EXPECT_EQ(Latest(out), "step_00000010") << result.output;
  for (int step : {5, 10}) {
    EXPECT_EQ(CompareSnapshots(Snapshot(CheckpointDir(reference, step)),
                               Snapshot(CheckpointDir(out, step))),
              "")
        << "step " << step;
  }
  EXPECT_FALSE(tests::FileExists(CheckpointDir(out, 15)));
  // The failed checkpoint leaves nothing behind to fill the disk further (its temporary
  // directory would never be removed: pruning and later writes only see step_* directories).
  EXPECT_EQ(Join(CheckpointEntries(out)), "latest step_00000005 step_00000010")
      << "the failed write left its partial temporary directory behind";

  // The newest complete one resumes (from a copy outside the full disk) to the same end.
  const std::string copy = test_dir_ + "/step_00000010";
  ASSERT_EQ(
      tests::RunCommand("cp -a " + ShellQuote(CheckpointDir(out, 10)) + " " + ShellQuote(copy)), 0);
  const std::string continued = test_dir_ + "/continued";
  const Result resumed = Train(1, config, continued, "--resume " + ShellQuote(copy));
  ASSERT_EQ(resumed.exit_code, kExitOk) << resumed.output;
  EXPECT_TRUE(tests::ReadFile(continued + "/model.safetensors") ==
              tests::ReadFile(reference + "/model.safetensors"));
}

// ---------------------------------------------------------------------------------------------
// 4. keep_last

TEST_F(CheckpointTest, KeepLastKeepsTheNewest) {
  Training training = IntegrityTraining();
  training.keep_last = 2;
  const std::string out = test_dir_ + "/out";
  const Result result = Train(1, Config(training), out);
  ASSERT_EQ(result.exit_code, kExitOk) << result.output;
  EXPECT_EQ(Join(CheckpointEntries(out)), "latest step_00000015 step_00000020");
  EXPECT_EQ(Latest(out), "step_00000020");
  EXPECT_EQ(CompleteCheckpointStep(CheckpointDir(out, 15)), 15);
  EXPECT_EQ(CompleteCheckpointStep(CheckpointDir(out, 20)), 20);
}

// ---------------------------------------------------------------------------------------------
// 5. Another world size

TEST_F(CheckpointTest, ResumingOnAnotherWorldSizeWarns) {
  const std::string config = Config(IntegrityTraining());
  const std::string reference = Uninterrupted(IntegrityTraining(), 1);
  const std::string out = CopyOf(reference, "two_ranks");
  const Result result =
      Train(2, config, out,
            "--resume " + ShellQuote(CheckpointDir(out, 10)) + " --set train.max_steps=20");
  ASSERT_EQ(result.exit_code, kExitOk) << result.output;
  EXPECT_TRUE(Contains(result.output, "Resuming from " + CheckpointDir(out, 10))) << result.output;
  EXPECT_TRUE(Contains(result.output, "written by 1 rank(s), this run has 2")) << result.output;
  EXPECT_TRUE(Contains(result.output, "not be bit-identical")) << result.output;
  std::vector<int64_t> all_steps;
  for (int step = 1; step <= 20; ++step) all_steps.push_back(step);
  EXPECT_EQ(TrainSteps(Records(out)), all_steps);
  EXPECT_EQ(Latest(out), "step_00000020");
}

}  // namespace
}  // namespace dgqa
