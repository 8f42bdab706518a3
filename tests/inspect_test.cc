// End-to-end tests of `dgqa inspect` (docs/design.md §7.5): the binary is run on checkpoints,
// run directories and weights and optimizer files of a tiny run of every scheme, and what it
// reports is checked against the config the runs were made with (the parameter count against a
// formula written out here), the allocations against what the model loaded from the checkpoint
// reports; damaged checkpoints must be reported as damaged (exit 1) naming the file, and paths
// that are none of these things refused with exit 2 naming the path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "kernels/backend.h"
#include "model/vit.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"

namespace dgqa {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using tests::DgqaRun;
using tests::shell_quote;

const std::vector<std::string> kSchemes = {"MHA", "GQA", "KDGQA", "DGQA_DIFF", "DGQA_EMA", "PGQA"};

// The runs' shape (tests/fixtures.h's tiny ViT) and length.
constexpr int kImage = 8, kPatch = 4, kChannels = 1, kClasses = 4;
constexpr int kDim = 16, kDepth = 2, kHeads = 4;
constexpr int kSteps = 3;          // checkpoints at steps 2 and 3
constexpr int kStepsPerEpoch = 8;  // 64 training images in batches of 8
constexpr const char* kNewest = "/checkpoints/step_00000003";

bool is_dgqa(const std::string& scheme) {
  return scheme == "DGQA_DIFF" || scheme == "DGQA_EMA";
}

int kv_heads(const std::string& scheme) {
  return scheme == "MHA" ? kHeads : 2;
}

// The parameters of the ViT of docs/design.md §3.0 by top-level group, written out from the
// shapes of §4: a patch embedding, class token, position embedding, blocks, final norm and head.
std::map<std::string, int64_t> expected_parameters(int G) {
  const int64_t D = kDim, d = kDim / kHeads, F = 4 * kDim, kv = G * d;
  const int64_t tokens = (kImage / kPatch) * (kImage / kPatch) + 1;
  const int64_t attention = (D * D + D) + 2 * (kv * D + kv) + (D * D + D);
  const int64_t mlp = (F * D + F) + (D * F + D);
  const int64_t norms = 2 * (2 * D);
  return {{"patch_embed", D * kChannels * kPatch * kPatch + D},
          {"cls_token", D},
          {"pos_embed", tokens * D},
          {"blocks", kDepth * (attention + mlp + norms)},
          {"norm", 2 * D},
          {"head", kClasses * D + kClasses},
          {"attention", kDepth * attention},
          {"mlp", kDepth * mlp},
          {"norms", kDepth * norms}};
}

int64_t expected_total(int G) {
  const std::map<std::string, int64_t> groups = expected_parameters(G);
  int64_t total = 0;
  for (const char* group : {"patch_embed", "cls_token", "pos_embed", "blocks", "norm", "head"}) {
    total += groups.at(group);
  }
  return total;
}

void expect_parameters(const json& parameters, int G) {
  const std::map<std::string, int64_t> expected = expected_parameters(G);
  EXPECT_EQ(parameters.value("total", int64_t{-1}), expected_total(G)) << parameters.dump();
  for (const char* group : {"patch_embed", "cls_token", "pos_embed", "blocks", "norm", "head"}) {
    EXPECT_EQ(parameters["groups"].value(group, int64_t{-1}), expected.at(group)) << group;
  }
  for (const char* part : {"attention", "mlp", "norms"}) {
    EXPECT_EQ(parameters["blocks"].value(part, int64_t{-1}), expected.at(part)) << part;
  }
}

// The shape the runs were made with; H and G only where the thing inspected records them.
void expect_shape(const json& model, const std::string& scheme, bool heads_known) {
  const int G = kv_heads(scheme);
  EXPECT_EQ(model.value("attention", ""), scheme);
  EXPECT_EQ(model.value("image_size", -1), kImage);
  EXPECT_EQ(model.value("patch_size", -1), kPatch);
  EXPECT_EQ(model.value("in_channels", -1), kChannels);
  EXPECT_EQ(model.value("embed_dim", -1), kDim);
  EXPECT_EQ(model.value("depth", -1), kDepth);
  EXPECT_EQ(model.value("mlp_dim", -1), 4 * kDim);
  EXPECT_EQ(model.value("num_classes", -1), kClasses);
  EXPECT_EQ(model.value("kv_width", -1), G * kDim / kHeads);
  if (heads_known) {
    EXPECT_EQ(model.value("num_heads", -1), kHeads);
    EXPECT_EQ(model.value("num_kv_heads", -1), G);
  } else {
    EXPECT_TRUE(model["num_heads"].is_null()) << model.dump();
    EXPECT_TRUE(model["num_kv_heads"].is_null()) << model.dump();
  }
}

struct Inspected {
  DgqaRun run;
  json report;
};

class InspectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_dir_ = new std::string(tests::make_temp_dir("dgqa_inspect_suite_"));
    const tests::FixtureDataset data = tests::write_fixture_dataset(*suite_dir_);
    for (const std::string& scheme : kSchemes) {
      tests::FixtureConfig config;
      config.attention = scheme;
      config.num_kv_heads = scheme == "MHA" ? -1 : 2;
      config.max_steps = kSteps;
      config.extra = "checkpoint { every_steps: 2 }";
      tests::write_fixture_config(config_of(scheme), data, config);
      const DgqaRun run = tests::run_dgqa("train --config " + shell_quote(config_of(scheme)) +
                                              " --out " + shell_quote(run_of(scheme)),
                                          *suite_dir_);
      ASSERT_EQ(run.exit_code, 0) << run.err;
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*suite_dir_);
    delete suite_dir_;
  }
  void SetUp() override { dir_ = tests::make_temp_dir("dgqa_inspect_"); }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string config_of(const std::string& scheme) {
    return *suite_dir_ + "/" + scheme + ".pbtxt";
  }
  static std::string run_of(const std::string& scheme) { return *suite_dir_ + "/" + scheme; }

  // `dgqa inspect --json PATH`: its exit, and its report, which must be one JSON object.
  Inspected inspect(const std::string& path) const {
    Inspected inspected;
    inspected.run = tests::run_dgqa("inspect --json " + shell_quote(path), dir_);
    try {
      inspected.report = json::parse(inspected.run.out);
    } catch (const json::exception& error) {
      ADD_FAILURE() << "not JSON (" << error.what() << "):\n" << inspected.run.out;
    }
    return inspected;
  }

  // Inspects a sound path: exit 0, nothing on stderr, no problems.
  json inspect_sound(const std::string& path, const std::string& kind) const {
    const Inspected inspected = inspect(path);
    EXPECT_EQ(inspected.run.exit_code, 0) << inspected.run.err;
    EXPECT_EQ(inspected.run.err, "");
    EXPECT_EQ(inspected.report.value("kind", ""), kind);
    EXPECT_EQ(inspected.report.value("sound", false), true);
    EXPECT_EQ(inspected.report.value("problems", json::array()), json::array());
    return inspected.report;
  }

  // A copy of the GQA run to damage.
  std::string copy_of_run(const std::string& scheme = "GQA") const {
    const std::string copy = dir_ + "/run";
    fs::copy(run_of(scheme), copy, fs::copy_options::recursive);
    return copy;
  }

  // Expects a damaged report of `path`: exit 1, a problem naming `file` with `what`, and the
  // same problem on stderr's one "dgqa: damaged:" line.
  json expect_damaged(const std::string& path, const std::string& file,
                      const std::string& what) const {
    const Inspected inspected = inspect(path);
    EXPECT_EQ(inspected.run.exit_code, 1) << inspected.run.err;
    EXPECT_EQ(inspected.report.value("sound", true), false);
    bool named = false;
    for (const json& problem : inspected.report.value("problems", json::array())) {
      const std::string text = problem.get<std::string>();
      named =
          named || (text.find(file) != std::string::npos && text.find(what) != std::string::npos);
    }
    EXPECT_TRUE(named) << "no problem names " << file << " and '" << what << "':\n"
                       << inspected.report.dump(2);
    EXPECT_EQ(tests::count_lines_containing(inspected.run.err, "dgqa: damaged: "), 1)
        << inspected.run.err;
    EXPECT_NE(inspected.run.err.find(file), std::string::npos) << inspected.run.err;
    return inspected.report;
  }

  static std::string* suite_dir_;
  std::string dir_;
};

std::string* InspectTest::suite_dir_ = nullptr;

// The model dgqa itself builds from the checkpoint, for what it reports of its allocations.
struct LoadedModel {
  std::unique_ptr<Backend> backend = make_backend("cpu");
  std::unique_ptr<VisionTransformer> model;
};

std::unique_ptr<LoadedModel> load_checkpoint(const std::string& config_path,
                                             const std::string& dir) {
  const config::Config config = load_config(config_path, {});
  auto loaded = std::make_unique<LoadedModel>();
  loaded->model = std::make_unique<VisionTransformer>(model_config_from(config), *loaded->backend,
                                                      1, config.seed());
  load_checkpoint_model(open_checkpoint(dir, config), *loaded->model);
  return loaded;
}

// The reported allocation: KDGQA's is chosen per pass; the others' are the model's, each layer's
// counts (and DGQA's cache) as the loaded model reports them.
void expect_allocation(const json& allocation, const std::string& scheme,
                       const VisionTransformer& model) {
  if (scheme == "KDGQA") {
    EXPECT_EQ(allocation.value("kind", ""), "per_pass") << allocation.dump();
    EXPECT_FALSE(allocation.contains("layers")) << allocation.dump();
    return;
  }
  EXPECT_EQ(allocation.value("kind", ""), is_dgqa(scheme) ? "dgqa" : "fixed") << allocation.dump();
  ASSERT_EQ(allocation["layers"].size(), static_cast<size_t>(kDepth)) << allocation.dump();
  for (int l = 0; l < kDepth; ++l) {
    const GroupAllocator& allocator = model.allocators()[l];
    EXPECT_EQ(allocation["layers"][l].get<std::vector<int>>(), allocator.allocation()) << l;
    if (!is_dgqa(scheme)) continue;
    std::vector<float> cache;
    for (const json& value : allocation["cache"][l]) cache.push_back(value.get<float>());
    EXPECT_EQ(cache, allocator.cache()) << l;
  }
}

// The last record of a kind in metrics.jsonl, read here.
json last_record(const std::string& metrics, const std::string& kind) {
  json last;
  for (const std::string& line : tests::lines_of(tests::read_file(metrics))) {
    const json record = json::parse(line);
    if (record.value("kind", "") == kind) last = record;
  }
  return last;
}

class InspectSchemeTest : public InspectTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(InspectSchemeTest, CheckpointIsDescribedAsItsConfigMadeIt) {
  const std::string scheme = GetParam();
  const std::string run = run_of(scheme);
  const std::unique_ptr<LoadedModel> loaded = load_checkpoint(config_of(scheme), run + kNewest);
  // The checkpoint by its directory, by OUT/checkpoints and by the latest file: the newest one.
  for (const std::string& path :
       {run + kNewest, run + "/checkpoints", run + "/checkpoints/latest"}) {
    SCOPED_TRACE(path);
    const json report = inspect_sound(path, "checkpoint");
    const json& checkpoint = report["checkpoint"];
    EXPECT_EQ(checkpoint.value("dir", ""), run + kNewest);
    EXPECT_EQ(checkpoint.value("step", -1), kSteps);
    EXPECT_EQ(checkpoint.value("epoch", -1), kSteps / kStepsPerEpoch);
    EXPECT_EQ(checkpoint.value("batch_in_epoch", -1), kSteps % kStepsPerEpoch);
    EXPECT_EQ(checkpoint.value("world_size", -1), 1);
    EXPECT_EQ(checkpoint.value("seed", -1), 7);
    EXPECT_EQ(checkpoint.value("checksums_hold", false), true);
    ASSERT_EQ(checkpoint["files"].size(), 2u);
    EXPECT_EQ(checkpoint["files"][0].value("name", ""), "model.safetensors");
    EXPECT_EQ(checkpoint["files"][0].value("bytes", -1),
              static_cast<int64_t>(fs::file_size(run + kNewest + "/model.safetensors")));
    expect_shape(report["model"], scheme, /*heads_known=*/true);
    expect_parameters(report["parameters"], kv_heads(scheme));
    expect_allocation(report["allocation"], scheme, *loaded->model);
    tests::expect_contains(report.value("config", ""), "attention: " + scheme);
  }
}

TEST_P(InspectSchemeTest, RunIsDescribedWithItsNewestCheckpointAndMetrics) {
  const std::string scheme = GetParam();
  const std::string run = run_of(scheme);
  const std::unique_ptr<LoadedModel> loaded = load_checkpoint(config_of(scheme), run + kNewest);
  const json report = inspect_sound(run, "run");
  EXPECT_EQ(report["run"].value("checkpoints", -1), 2);
  EXPECT_EQ(report["checkpoint"].value("dir", ""), run + kNewest);
  EXPECT_EQ(report["checkpoint"].value("step", -1), kSteps);
  EXPECT_EQ(report["checkpoint"].value("world_size", -1), 1);
  expect_shape(report["model"], scheme, /*heads_known=*/true);
  expect_parameters(report["parameters"], kv_heads(scheme));
  expect_allocation(report["allocation"], scheme, *loaded->model);

  const json& metrics = report["run"]["metrics"];
  const std::string metrics_path = run + "/metrics.jsonl";
  EXPECT_EQ(metrics["last_train"], last_record(metrics_path, "train"));
  EXPECT_EQ(metrics["last_train"].value("step", -1), kSteps);
  EXPECT_EQ(metrics["last_eval"], last_record(metrics_path, "eval"));
  EXPECT_EQ(metrics["last_eval"].value("step", -1), kSteps);
  EXPECT_EQ(metrics["last_allocation"], last_record(metrics_path, "allocation"));

  const json& weights = report["run"]["final_weights"];
  EXPECT_EQ(weights.value("file", ""), run + "/model.safetensors");
  EXPECT_EQ(weights.value("parameters", -1), expected_total(kv_heads(scheme)));
  EXPECT_EQ(weights.value("same_as_checkpoint", false), true);
  EXPECT_EQ(weights.value("ok", false), true);
}

// A bare weights file records its shape and scheme but not H and G (except through DGQA's
// allocations), nor anything of the run; the report says so.
TEST_P(InspectSchemeTest, WeightsFileIsDescribedByWhatItRecords) {
  const std::string scheme = GetParam();
  const std::unique_ptr<LoadedModel> loaded =
      load_checkpoint(config_of(scheme), run_of(scheme) + kNewest);
  const std::string weights = dir_ + "/weights.safetensors";
  fs::copy_file(run_of(scheme) + "/model.safetensors", weights);
  const json report = inspect_sound(weights, "weights");
  EXPECT_EQ(report["weights"].value("format", ""), "dgqa");
  EXPECT_EQ(report["weights"].value("bytes", -1), static_cast<int64_t>(fs::file_size(weights)));
  expect_shape(report["model"], scheme, /*heads_known=*/is_dgqa(scheme));
  expect_parameters(report["parameters"], kv_heads(scheme));
  EXPECT_FALSE(report.contains("checkpoint"));
  const json not_recorded = report["not_recorded"];
  for (const char* field : {"step", "epoch", "world_size", "config", "checksums"}) {
    EXPECT_NE(std::find(not_recorded.begin(), not_recorded.end(), field), not_recorded.end())
        << field << " in " << not_recorded.dump();
  }
  const bool heads_listed =
      std::find(not_recorded.begin(), not_recorded.end(), "num_heads") != not_recorded.end();
  EXPECT_EQ(heads_listed, !is_dgqa(scheme)) << not_recorded.dump();
  if (scheme == "KDGQA" || is_dgqa(scheme)) {
    expect_allocation(report["allocation"], scheme, *loaded->model);
  } else {
    EXPECT_EQ(report["allocation"].value("kind", ""), "unknown") << report["allocation"].dump();
  }
}

// A checkpoint's own files, named directly: described with their checkpoint.
TEST_P(InspectSchemeTest, CheckpointFilesAreDescribedWithTheirCheckpoint) {
  const std::string scheme = GetParam();
  const std::string checkpoint = run_of(scheme) + kNewest;
  const json model = inspect_sound(checkpoint + "/model.safetensors", "weights");
  EXPECT_EQ(model["checkpoint"].value("step", -1), kSteps);
  expect_shape(model["model"], scheme, /*heads_known=*/true);
  expect_parameters(model["parameters"], kv_heads(scheme));

  const json optimizer = inspect_sound(checkpoint + "/optimizer.safetensors", "optimizer");
  EXPECT_EQ(optimizer["optimizer"].value("steps", -1), kSteps);
  EXPECT_EQ(optimizer["checkpoint"].value("world_size", -1), 1);
  expect_parameters(optimizer["parameters"], kv_heads(scheme));
}

INSTANTIATE_TEST_SUITE_P(EveryScheme, InspectSchemeTest, ::testing::ValuesIn(kSchemes),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param;
                         });

TEST_F(InspectTest, BareOptimizerFileGivesItsStepsAndParameters) {
  const std::string file = dir_ + "/optimizer.safetensors";
  fs::copy_file(run_of("GQA") + kNewest + "/optimizer.safetensors", file);
  const json report = inspect_sound(file, "optimizer");
  EXPECT_EQ(report["optimizer"].value("steps", -1), kSteps);
  expect_parameters(report["parameters"], kv_heads("GQA"));
  EXPECT_FALSE(report.contains("model"));
}

// timm's layout: the MHA run's weights with q, k and v fused into attn.qkv, as timm writes them.
TEST_F(InspectTest, TimmCheckpointIsAnMhaModelWithoutHeads) {
  const SafetensorsFile mha = SafetensorsFile::read(run_of("MHA") + "/model.safetensors");
  SafetensorsWriter writer;
  std::vector<std::vector<float>> kept;  // the writer holds pointers until write()
  for (const std::string& name : mha.names()) {
    const size_t q = name.find(".attn.q.");
    if (name.find(".attn.k.") != std::string::npos || name.find(".attn.v.") != std::string::npos) {
      continue;
    }
    std::vector<int64_t> shape = mha.get(name).shape;
    std::vector<float> values = mha.as_f32(name);
    if (q != std::string::npos) {
      for (const char* other : {".attn.k.", ".attn.v."}) {
        const std::string twin = name.substr(0, q) + other + name.substr(q + 8);
        const std::vector<float> more = mha.as_f32(twin);
        values.insert(values.end(), more.begin(), more.end());
      }
      shape[0] *= 3;
    }
    kept.push_back(values);
    const std::string timm_name =
        q == std::string::npos ? name : name.substr(0, q) + ".attn.qkv." + name.substr(q + 8);
    writer.add_f32(timm_name, shape, kept.back().data());
  }
  const std::string file = dir_ + "/timm.safetensors";
  writer.write(file);

  const json report = inspect_sound(file, "weights");
  EXPECT_EQ(report["weights"].value("format", ""), "timm");
  expect_shape(report["model"], "MHA", /*heads_known=*/false);
  expect_parameters(report["parameters"], kHeads);
}

TEST_F(InspectTest, TextReportIsAlignedAndComplete) {
  const DgqaRun run = tests::run_dgqa("inspect " + shell_quote(run_of("GQA")), dir_);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const std::string total = std::to_string(expected_total(2));
  ASSERT_EQ(total.size(), 4u);  // one thousands separator
  const std::string grouped = total.substr(0, 1) + "," + total.substr(1);
  for (const std::string& expected :
       {"run                     " + run_of("GQA"), std::string("  checkpoints           2"),
        "checkpoint              " + run_of("GQA") + kNewest + " (named by latest)",
        std::string("  step                  3 (epoch 0, batch_in_epoch 3)"),
        std::string("model                   GQA (the checkpoint's config)"),
        std::string("  heads                 H 4, G 2, head width 4 (K/V width G*d 8)"),
        std::string("  layer 1               2 2"), "parameters              " + grouped,
        std::string("status                  sound")}) {
    EXPECT_EQ(tests::count_lines_containing(run.out, expected), 1) << expected << "\n" << run.out;
  }
  EXPECT_EQ(run.out.find("train {"), std::string::npos);  // the config only with --show-config
  const DgqaRun with_config =
      tests::run_dgqa("inspect --show-config " + shell_quote(run_of("GQA")), dir_);
  EXPECT_NE(with_config.out.find("  attention: GQA"), std::string::npos) << with_config.out;
}

// ---- Damage ---------------------------------------------------------------------------------

void flip_byte_in_the_middle(const std::string& path) {
  std::string bytes = tests::read_file(path);
  bytes[bytes.size() / 2] ^= 0x20;
  tests::write_file(path, bytes);
}

TEST_F(InspectTest, FlippedByteInTheWeightsIsDamage) {
  const std::string run = copy_of_run();
  flip_byte_in_the_middle(run + kNewest + "/model.safetensors");
  const json report = expect_damaged(run + kNewest, "model.safetensors", "fails its checksum");
  EXPECT_EQ(report["checkpoint"]["files"][0].value("ok", true), false);
  EXPECT_EQ(report["checkpoint"]["files"][1].value("ok", false), true);
  EXPECT_EQ(report["checkpoint"].value("step", -1), kSteps);  // what could be read is shown
  expect_shape(report["model"], "GQA", /*heads_known=*/true);
  const json whole_run = expect_damaged(run, "model.safetensors", "fails its checksum");
  EXPECT_EQ(whole_run["run"]["final_weights"].value("same_as_checkpoint", true), false);
}

TEST_F(InspectTest, TruncatedOptimizerFileIsDamage) {
  const std::string run = copy_of_run();
  const std::string optimizer = run + kNewest + "/optimizer.safetensors";
  fs::resize_file(optimizer, fs::file_size(optimizer) / 2);
  const json report = expect_damaged(run + kNewest, "optimizer.safetensors", "truncated");
  EXPECT_EQ(report["checkpoint"]["files"][1].value("bytes", -1),
            static_cast<int64_t>(fs::file_size(optimizer)));
  expect_parameters(report["parameters"], 2);
  expect_damaged(optimizer, "optimizer.safetensors", "truncated");
}

TEST_F(InspectTest, EditedOrUnparsableStateIsDamage) {
  const std::string run = copy_of_run();
  const std::string state = run + kNewest + "/state.pbtxt";
  const std::string text = tests::read_file(state);
  std::string edited = text;
  const size_t at = edited.find("world_size: 1");
  ASSERT_NE(at, std::string::npos) << text;
  edited.replace(at, 13, "world_size: 2");
  tests::write_file(state, edited);
  const json report = expect_damaged(run + kNewest, "state.pbtxt", "fails its checksum");
  EXPECT_EQ(report["checkpoint"].value("world_size", -1), 2);  // read, though not to be trusted
  EXPECT_EQ(report["checkpoint"]["state"].value("ok", true), false);
  EXPECT_EQ(report["checkpoint"]["state"].value("checksum_holds", true), false);
  EXPECT_EQ(report["checkpoint"].value("checksums_hold", true), false);

  // Sealed again with its checksum line: the checksum holds, the step does not fit the run.
  std::string impossible = tests::state_body(text);
  impossible.replace(impossible.find("step: 3"), 7, "step: 9");
  tests::write_file(state, tests::sealed_state(impossible));
  const json unfit = expect_damaged(run + kNewest, "state.pbtxt", "step: 9 is beyond");
  EXPECT_EQ(unfit["checkpoint"]["state"].value("checksum_holds", false), true);
  EXPECT_EQ(unfit["checkpoint"].value("checksums_hold", false), true);
  EXPECT_TRUE(unfit["model"].value("from", "") == "tensors");  // its config is not trusted

  tests::write_file(state, "step: {{{\n");
  const json unparsable = expect_damaged(run + kNewest, "state.pbtxt", "state.pbtxt:1:");
  EXPECT_TRUE(unparsable["checkpoint"]["step"].is_null());
  expect_shape(unparsable["model"], "GQA", /*heads_known=*/false);  // from the weights alone
}

TEST_F(InspectTest, MissingFilesAreDamage) {
  const std::string run = copy_of_run("DGQA_EMA");
  fs::remove(run + kNewest + "/model.safetensors");
  const json report = expect_damaged(run, "model.safetensors", "missing");
  EXPECT_EQ(report["checkpoint"]["files"][0].value("missing", false), true);
  // The DGQA state then comes from state.pbtxt's copy of it.
  EXPECT_EQ(report["allocation"].value("source", ""), "state.pbtxt");
  const std::unique_ptr<LoadedModel> loaded =
      load_checkpoint(config_of("DGQA_EMA"), run_of("DGQA_EMA") + kNewest);
  expect_allocation(report["allocation"], "DGQA_EMA", *loaded->model);

  fs::remove(run + kNewest + "/state.pbtxt");
  expect_damaged(run + kNewest, "state.pbtxt", "missing");

  fs::remove_all(run + kNewest);  // `latest` names a checkpoint that is gone
  expect_damaged(run, "step_00000003", "not a directory");
}

// ---- Not a thing inspect knows --------------------------------------------------------------

TEST_F(InspectTest, PathsThatAreNoneOfTheseAreRefusedWithExit2) {
  const std::string text_file = dir_ + "/notes.txt";
  tests::write_file(text_file, "not a safetensors file\n");
  fs::create_directory(dir_ + "/empty");
  const std::string other = dir_ + "/other.safetensors";
  SafetensorsWriter writer;
  const float value = 1;
  writer.add_f32("a", {1}, &value);
  writer.write(other);
  for (const std::string& path :
       {dir_ + "/nowhere", dir_ + "/empty", text_file, other, std::string("/dev/null")}) {
    SCOPED_TRACE(path);
    const DgqaRun run = tests::run_dgqa("inspect " + shell_quote(path), dir_);
    tests::expect_input_error(run, {path});
    EXPECT_EQ(run.out, "");
  }
  tests::expect_input_error(tests::run_dgqa("inspect", dir_), {"needs PATH"});
  tests::expect_input_error(tests::run_dgqa("inspect a b", dir_), {"'b'"});
}

}  // namespace
}  // namespace dgqa
