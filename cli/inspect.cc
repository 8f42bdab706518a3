// `dgqa inspect PATH` (docs/design.md §7.5): what a checkpoint, a run directory or a weights
// file holds, and whether it is sound. The report is built as one JSON object, which --json
// prints and cli/inspect_report.h turns into text, so that the two always say the same.
#include <glog/logging.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/inspect_report.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "io/timm_import.h"
#include "io/weights.h"
#include "kernels/backend.h"
#include "model/param_layout.h"
#include "model/vit.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"

namespace dgqa {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kStateFile = "state.pbtxt";
constexpr const char* kStepsTensor = "optimizer.steps";
constexpr const char* kFirstMoment = "exp_avg.";
constexpr const char* kSecondMoment = "exp_avg_sq.";

// What the report says; the JSON object of docs/design.md §7.5 is built from it.
struct Inspection {
  Json report = Json::object();
  std::vector<std::string> problems;  // each names its file
  std::vector<std::string> notes;     // worth knowing, not damage
};

bool exists_at(const fs::path& path) {
  std::error_code error;
  return fs::exists(path, error);
}

// Runs `read`; an InputError it throws becomes a problem of the report. Returns whether it ran
// through.
bool readable(const std::function<void()>& read, Inspection& inspection) {
  try {
    read();
    return true;
  } catch (const InputError& problem) {
    inspection.problems.push_back(problem.what());
    return false;
  }
}

// ---- What PATH is ---------------------------------------------------------------------------

enum class Kind { kCheckpoint, kRun, kFile };

// A checkpoint directory, damaged or not: its name, or a file that only checkpoints have.
bool is_checkpoint_dir(const fs::path& dir) {
  const std::string name = dir.filename().string();
  return (name.rfind("step_", 0) == 0 && name.size() == 13) || exists_at(dir / kStateFile) ||
         exists_at(dir / kOptimizerFile);
}

// OUT/checkpoints: it has a `latest` file or checkpoint directories.
bool is_checkpoints_root(const fs::path& dir) {
  return exists_at(dir / "latest") || !list_checkpoints(dir.string()).empty();
}

Kind kind_of(const fs::path& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) throw InputError(path.string() + ": no such file or directory");
  if (fs::is_regular_file(status)) {
    return path.filename() == "latest" ? Kind::kCheckpoint : Kind::kFile;
  }
  if (!fs::is_directory(status)) {
    throw InputError(path.string() + ": neither a regular file nor a directory");
  }
  if (is_checkpoint_dir(path) || is_checkpoints_root(path)) return Kind::kCheckpoint;
  if (exists_at(path / "checkpoints") || exists_at(path / kModelFile) ||
      exists_at(path / "metrics.jsonl")) {
    return Kind::kRun;
  }
  throw InputError(path.string() +
                   ": a directory that is not a checkpoint (no state.pbtxt), not OUT/checkpoints "
                   "(no latest, no step_NNNNNNNN) and not a run's OUT (no checkpoints/, "
                   "model.safetensors or metrics.jsonl)");
}

// The name check_checkpoint takes for the checkpoint of `root` (OUT/checkpoints): its `latest`,
// else the newest by name (a run killed before it wrote `latest`); nullopt when there is none.
std::optional<std::string> checkpoint_in(const fs::path& root, Inspection& inspection) {
  if (exists_at(root / "latest")) return (root / "latest").string();
  const std::vector<std::string> dirs = list_checkpoints(root.string());
  if (dirs.empty()) return std::nullopt;
  inspection.notes.push_back(root.string() + " has no latest file: the newest checkpoint by name");
  return dirs.front();
}

// ---- The model: shape, allocation, parameters -----------------------------------------------

Json or_null(bool known, const Json& value) {
  return known ? value : Json();
}

// What is known of a model's shape; unless heads_known, its H and G are stand-ins.
struct ModelShape {
  ModelConfig config;
  bool scheme_known = true;
  bool heads_known = true;
  int64_t kv_width = 0;
  std::string from;  // "config" (recorded by a checkpoint) or "tensors" (of a weights file)
};

ModelShape shape_from_config(const ModelConfig& config) {
  ModelShape shape;
  shape.config = config;
  shape.kv_width = static_cast<int64_t>(config.num_kv_heads) * config.head_dim();
  shape.from = "config";
  return shape;
}

ModelShape shape_from_tensors(const SafetensorsFile& file) {
  const WeightsShape recorded = weights_shape(file);
  ModelShape shape;
  shape.config = recorded.model;
  shape.scheme_known = recorded.scheme_known;
  shape.heads_known = recorded.heads_known;
  shape.kv_width = recorded.kv_width;
  shape.from = "tensors";
  return shape;
}

Json model_json(const ModelShape& shape) {
  const ModelConfig& m = shape.config;
  return {{"attention", or_null(shape.scheme_known, attention_scheme_name(m.attention))},
          {"image_size", m.image_size},
          {"patch_size", m.patch_size},
          {"in_channels", m.in_channels},
          {"patches", m.num_patches()},
          {"tokens", m.num_tokens()},
          {"embed_dim", m.embed_dim},
          {"depth", m.depth},
          {"num_heads", or_null(shape.heads_known, m.num_heads)},
          {"num_kv_heads", or_null(shape.heads_known, m.num_kv_heads)},
          {"head_dim", or_null(shape.heads_known, m.head_dim())},
          {"kv_width", shape.kv_width},
          {"mlp_dim", m.mlp_dim()},
          {"num_classes", m.num_classes},
          {"from", shape.from}};
}

Json unknown_allocation(const std::string& why) {
  return {{"kind", "unknown"}, {"why", why}};
}

// Per layer, the query heads of each K/V head the model reports (`model` holds the weights
// file's DGQA state when `dgqa_state` is true), and for DGQA its cache.
Json allocation_json(const ModelShape& shape, const VisionTransformer& model, bool dgqa_state,
                     const std::string& source) {
  const AttentionScheme scheme = shape.config.attention;
  if (!shape.scheme_known) return unknown_allocation("the file does not record its scheme");
  if (scheme == AttentionScheme::kKDGQA) {
    return {{"kind", "per_pass"}, {"why", "chosen in every forward pass from the key norms"}};
  }
  if (!shape.heads_known) return unknown_allocation("the file does not record H and G");
  const bool dgqa = has_dgqa_state(scheme);
  if (dgqa && !dgqa_state) return unknown_allocation(source + " cannot be read");
  Json layers = Json::array(), caches = Json::array();
  for (const GroupAllocator& allocator : model.allocators()) {
    layers.push_back(allocator.allocation());
    caches.push_back(allocator.cache());
  }
  if (!dgqa) return {{"kind", "fixed"}, {"layers", layers}};
  return {{"kind", "dgqa"}, {"source", source}, {"layers", layers}, {"cache", caches}};
}

// The DGQA state a checkpoint's state.pbtxt repeats, for when its model.safetensors is damaged.
Json recorded_allocation(const checkpoint::State& state) {
  Json layers = Json::array(), caches = Json::array();
  for (const checkpoint::LayerState& layer : state.layers()) {
    layers.push_back(std::vector<int>(layer.allocation().begin(), layer.allocation().end()));
    caches.push_back(std::vector<float>(layer.cache().begin(), layer.cache().end()));
  }
  return {{"kind", "dgqa"}, {"source", kStateFile}, {"layers", layers}, {"cache", caches}};
}

// The parameters by top-level group in layout order (docs/design.md §4), and the blocks' by part.
Json parameters_json(const std::vector<std::pair<std::string, int64_t>>& tensors) {
  Json groups = {{"patch_embed", 0}, {"cls_token", 0}, {"pos_embed", 0},
                 {"blocks", 0},      {"norm", 0},      {"head", 0}};
  Json parts = {{"attention", 0}, {"mlp", 0}, {"norms", 0}};
  int64_t total = 0;
  for (const auto& [name, count] : tensors) {
    const std::string group = name.substr(0, name.find('.'));
    groups[group] = groups.value(group, int64_t{0}) + count;
    total += count;
    if (group != "blocks") continue;
    const size_t after_index = name.find('.', group.size() + 1) + 1;
    const std::string part = name.substr(after_index, name.find('.', after_index) - after_index);
    const std::string key = part == "attn" ? "attention" : part == "mlp" ? "mlp" : "norms";
    parts[key] = parts[key].get<int64_t>() + count;
  }
  return {{"total", total}, {"groups", groups}, {"blocks", parts}};
}

Json layout_parameters(const ModelConfig& config) {
  std::vector<std::pair<std::string, int64_t>> tensors;
  const ParamLayout layout(config);
  for (const TensorSlot& slot : layout.tensors()) {
    tensors.emplace_back(slot.name, slot.size);
  }
  return parameters_json(tensors);
}

// ---- Weights and optimizer files ------------------------------------------------------------

int64_t size_of(const fs::path& path) {
  std::error_code error;
  const uintmax_t size = fs::file_size(path, error);
  return error ? -1 : static_cast<int64_t>(size);
}

Json file_json(const SafetensorsFile& file, const std::string& format) {
  Json metadata = Json::object();
  for (const auto& [key, value] : file.metadata()) metadata[key] = value;
  return {{"file", file.path()},
          {"format", format},
          {"bytes", size_of(file.path())},
          {"tensors", file.names().size()},
          {"metadata", metadata}};
}

// Describes a model's weights file into the report: its shape (`known`, the config of the
// checkpoint it belongs to, else read off its tensors), allocation and parameters. Its tensors
// are checked by loading them into a model of that shape, as --init-from does. InputError when
// the file holds no ViT and `known` is not given.
void describe_weights(const SafetensorsFile& file, const std::optional<ModelConfig>& known,
                      Inspection& inspection) {
  const ModelShape shape = known ? shape_from_config(*known) : shape_from_tensors(file);
  std::unique_ptr<Backend> backend = make_backend("cpu");
  VisionTransformer model(shape.config, *backend, /*max_batch=*/1, /*seed=*/0);
  const bool loaded = readable([&] { load_weights(model, file); }, inspection);
  Json& report = inspection.report;
  const bool timm = is_timm_checkpoint(file);
  report["weights"] = file_json(file, timm ? "timm" : "dgqa");
  if (timm) {
    inspection.notes.push_back(
        "a timm checkpoint: MHA with one K/V head per query head; dgqa "
        "convert or --init-from turns it into the config's scheme");
  }
  report["model"] = model_json(shape);
  report["allocation"] =
      allocation_json(shape, model, loaded, fs::path(file.path()).filename().string());
  report["parameters"] = layout_parameters(shape.config);
}

bool is_optimizer_file(const SafetensorsFile& file) {
  return file.has(kStepsTensor);
}

// The step count and the parameters (counted from the first moments) of an optimizer file;
// each moment must have a twin of its shape.
void describe_optimizer(const SafetensorsFile& file, Inspection& inspection) {
  std::vector<std::pair<std::string, int64_t>> tensors;
  const std::string prefix = kFirstMoment;
  for (const std::string& name : file.names()) {
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string parameter = name.substr(prefix.size());
    const TensorData& first = file.get(name);
    if (!file.has(kSecondMoment + parameter) ||
        file.get(kSecondMoment + parameter).shape != first.shape) {
      inspection.problems.push_back(file.path() + ": " + kSecondMoment + parameter +
                                    " is missing or not of the shape of " + name);
    }
    int64_t count = 1;
    for (int64_t extent : first.shape) count *= extent;
    tensors.emplace_back(parameter, count);
  }
  Json optimizer = file_json(file, "optimizer");
  optimizer["steps"] = Json();
  readable(
      [&] {
        const std::vector<int64_t> steps = file.as_i64(kStepsTensor);
        if (steps.size() != 1) {
          throw InputError(file.path() + ": " + kStepsTensor + " is not one count");
        }
        optimizer["steps"] = steps[0];
      },
      inspection);
  inspection.report["optimizer"] = optimizer;
  inspection.report["parameters"] = parameters_json(tensors);
}

// ---- Checkpoints ----------------------------------------------------------------------------

std::string hex_crc(uint32_t crc) {
  char text[16];
  std::snprintf(text, sizeof(text), "%08x", static_cast<unsigned>(crc));
  return text;
}

Json checked_file_json(const CheckedFile& file) {
  const bool read = file.bytes >= 0;
  return {{"name", file.name},
          {"ok", file.problem.empty()},
          {"missing", file.missing},
          {"bytes", or_null(read, file.bytes)},
          {"recorded_bytes", file.recorded_bytes},
          {"crc32", or_null(read, hex_crc(file.crc32))},
          {"recorded_crc32", hex_crc(file.recorded_crc32)},
          {"problem", or_null(!file.problem.empty(), file.problem)}};
}

// The checkpoint's section: where training stood, who wrote it, and every file's check.
Json checkpoint_json(const CheckpointReport& checkpoint) {
  const checkpoint::State unread;
  const bool known = checkpoint.state.has_value();
  const checkpoint::State& state = known ? *checkpoint.state : unread;
  Json files = Json::array();
  bool files_hold = !checkpoint.files.empty();
  for (const CheckedFile& file : checkpoint.files) {
    files.push_back(checked_file_json(file));
    files_hold = files_hold && file.problem.empty();
  }
  Json shards = Json::array();  // ZeRO-1's manifest: empty when the moments are not sharded
  for (const checkpoint::OptimizerShard& shard : state.optimizer_shards()) {
    shards.push_back({{"file", shard.file()}, {"begin", shard.begin()}, {"end", shard.end()}});
  }
  return {{"dir", checkpoint.dir},
          {"named_by", or_null(!checkpoint.latest.empty(), checkpoint.latest)},
          {"step", or_null(known, state.step())},
          {"epoch", or_null(known, state.epoch())},
          {"batch_in_epoch", or_null(known, state.batch_in_epoch())},
          {"world_size", or_null(known, state.world_size())},
          {"seed", or_null(known, state.seed())},
          {"version", or_null(known, state.version())},
          {"state",
           {{"name", kStateFile},
            {"ok", checkpoint.state_problems.empty()},
            {"checksum_holds", checkpoint.sealed},
            {"problems", checkpoint.state_problems}}},
          {"files", files},
          {"optimizer_shards", shards},
          {"checksums_hold", checkpoint.sealed && files_hold}};
}

// The model a sound state.pbtxt records (a damaged one's config is not trusted).
std::optional<ModelConfig> recorded_model(const CheckpointReport& checkpoint) {
  if (!checkpoint.state || !checkpoint.state_problems.empty()) return std::nullopt;
  return model_config_from(checkpoint.state->config());
}

// Inspects the checkpoint `named` (as open_checkpoint takes it) into the report; its model is
// that of its model.safetensors. Returns its check.
CheckpointReport inspect_checkpoint(const std::string& named, Inspection& inspection) {
  CheckpointReport checkpoint = check_checkpoint(named);
  Json& report = inspection.report;
  report["checkpoint"] = checkpoint_json(checkpoint);
  for (const std::string& problem : checkpoint.state_problems) {
    inspection.problems.push_back(problem);
  }
  for (const CheckedFile& file : checkpoint.files) {
    const std::string path = (fs::path(checkpoint.dir) / file.name).string();
    if (file.missing) {
      inspection.problems.push_back(path + ": missing");
    } else if (!file.problem.empty()) {
      inspection.problems.push_back(file.problem);
    }
  }
  if (checkpoint.state) report["config"] = config_to_text(checkpoint.state->config());
  const std::optional<ModelConfig> known = recorded_model(checkpoint);
  const fs::path weights = fs::path(checkpoint.dir) / kModelFile;
  if (!checkpoint.dir.empty() && exists_at(weights)) {
    readable([&] { describe_weights(SafetensorsFile::read(weights.string()), known, inspection); },
             inspection);
  }
  if (known && !report.contains("model")) {  // the weights are unreadable: what state.pbtxt says
    report["model"] = model_json(shape_from_config(*known));
    report["parameters"] = layout_parameters(*known);
  }
  const bool dgqa = known && has_dgqa_state(known->attention);
  if (dgqa && report.value("allocation", Json::object()).value("kind", "") != "dgqa") {
    report["allocation"] = recorded_allocation(*checkpoint.state);
  }
  return checkpoint;
}

// ---- Runs -----------------------------------------------------------------------------------

// The last train, eval and allocation records of metrics.jsonl (a line cut short by a crash is
// counted, not held against the run).
Json metrics_json(const fs::path& path, Inspection& inspection) {
  std::ifstream in(path);
  Json metrics = {{"file", path.string()},
                  {"records", 0},
                  {"last_train", Json()},
                  {"last_eval", Json()},
                  {"last_allocation", Json()}};
  int64_t unreadable = 0;
  for (std::string line; std::getline(in, line);) {
    const Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) {
      ++unreadable;
      continue;
    }
    metrics["records"] = metrics["records"].get<int64_t>() + 1;
    const std::string kind = record.value("kind", "");
    if (kind == "train" || kind == "eval" || kind == "allocation") {
      metrics["last_" + kind] = record;
    }
  }
  if (unreadable > 0) {
    inspection.notes.push_back(path.string() + ": " + std::to_string(unreadable) +
                               " lines are not JSON records");
  }
  return metrics;
}

bool same_bytes(const fs::path& a, const fs::path& b) {
  std::ifstream first(a, std::ios::binary), second(b, std::ios::binary);
  if (!first || !second || size_of(a) != size_of(b)) return false;
  return std::equal(std::istreambuf_iterator<char>(first), std::istreambuf_iterator<char>(),
                    std::istreambuf_iterator<char>(second));
}

// The final weights of a run, OUT/model.safetensors, checked against the run's model (that of
// its newest checkpoint, when there is one). Without a checkpoint they describe the model.
Json final_weights_json(const fs::path& path, const CheckpointReport* checkpoint,
                        Inspection& inspection) {
  const std::optional<ModelConfig> known =
      checkpoint != nullptr ? recorded_model(*checkpoint) : std::nullopt;
  Inspection own;
  readable([&] { describe_weights(SafetensorsFile::read(path.string()), known, own); }, own);
  Json weights = own.report.value("weights", Json{{"file", path.string()}});
  const bool described = own.report.contains("model");
  weights["parameters"] = described ? own.report["parameters"]["total"] : Json();
  weights["ok"] = own.problems.empty();
  if (checkpoint != nullptr) {
    weights["same_as_checkpoint"] = same_bytes(path, fs::path(checkpoint->dir) / kModelFile);
  }
  inspection.problems.insert(inspection.problems.end(), own.problems.begin(), own.problems.end());
  if (!inspection.report.contains("model") && described) {
    for (const char* part : {"model", "allocation", "parameters"}) {
      inspection.report[part] = own.report[part];
    }
  }
  return weights;
}

void inspect_run(const fs::path& out, Inspection& inspection) {
  const fs::path root = out / "checkpoints";
  Json run = {{"dir", out.string()},
              {"checkpoints", list_checkpoints(root.string()).size()},
              {"metrics", Json()},
              {"final_weights", Json()}};
  if (exists_at(out / "metrics.jsonl")) {
    run["metrics"] = metrics_json(out / "metrics.jsonl", inspection);
  }
  std::optional<CheckpointReport> checkpoint;
  if (const std::optional<std::string> named = checkpoint_in(root, inspection)) {
    checkpoint = inspect_checkpoint(*named, inspection);
  }
  if (exists_at(out / kModelFile)) {
    run["final_weights"] =
        final_weights_json(out / kModelFile, checkpoint ? &*checkpoint : nullptr, inspection);
  }
  inspection.report["run"] = run;
}

// ---- Files ----------------------------------------------------------------------------------

// A weights or optimizer file. One of a checkpoint's is inspected with its checkpoint, whose
// config gives the model. InputError when a file outside a checkpoint is not a ViT's weights or
// an optimizer file.
void inspect_file(const fs::path& path, Inspection& inspection) {
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const std::string name = path.filename().string();
  const bool in_checkpoint =
      (name == kModelFile || name == kOptimizerFile) && exists_at(dir / kStateFile);
  if (in_checkpoint) {
    inspect_checkpoint(dir.string(), inspection);
    if (name == kModelFile) return;  // the checkpoint's model is this file
  }
  std::optional<SafetensorsFile> file;
  try {
    file = SafetensorsFile::read(path.string());
  } catch (const InputError& unreadable) {
    if (!in_checkpoint) throw;
    inspection.problems.push_back(unreadable.what());
    return;
  }
  if (is_optimizer_file(*file)) return describe_optimizer(*file, inspection);
  describe_weights(*file, std::nullopt, inspection);
}

// What a report of this kind cannot say, because the thing inspected does not record it.
Json not_recorded(const Json& report) {
  Json missing = Json::array();
  const Json model = report.value("model", Json());
  if (model.is_object()) {
    for (const char* field : {"attention", "num_heads", "num_kv_heads"}) {
      if (model[field].is_null()) missing.push_back(field);
    }
  } else {
    missing.push_back("model");
  }
  if (!report.contains("checkpoint")) {
    // An optimizer file counts its steps (optimizer.steps), which are the training steps.
    if (!report.contains("optimizer")) missing.push_back("step");
    for (const char* field :
         {"epoch", "batch_in_epoch", "world_size", "seed", "config", "checksums"}) {
      missing.push_back(field);
    }
  }
  return missing;
}

Inspection inspect(const std::string& path) {
  Inspection inspection;
  const Kind kind = kind_of(path);
  const bool optimizer_file = kind == Kind::kFile && fs::path(path).filename() == kOptimizerFile;
  if (kind == Kind::kRun) {
    inspect_run(path, inspection);
  } else if (kind == Kind::kFile) {
    inspect_file(path, inspection);
  } else if (is_checkpoint_dir(path) || !fs::is_directory(path)) {
    inspect_checkpoint(path, inspection);
  } else {
    inspect_checkpoint(checkpoint_in(path, inspection).value(), inspection);
  }
  Json& report = inspection.report;
  const char* kinds[] = {"checkpoint", "run", "weights"};
  const bool optimizer = report.contains("optimizer") || optimizer_file;
  Json head = {{"path", path},
               {"kind", optimizer ? "optimizer" : kinds[static_cast<int>(kind)]},
               {"sound", inspection.problems.empty()},
               {"problems", inspection.problems},
               {"notes", inspection.notes}};
  if (kind == Kind::kFile) head["not_recorded"] = not_recorded(report);
  head.update(report);
  if (head.contains("config")) {  // long: last
    const Json config = head["config"];
    head.erase("config");
    head["config"] = config;
  }
  inspection.report = head;
  return inspection;
}

}  // namespace

int inspect_command(const CommandLine& line) {
  FLAGS_minloglevel = google::GLOG_WARNING;  // the report says what loading the weights logs
  const Inspection inspection = inspect(line.path);
  const std::string text = line.json ? inspection.report.dump(2) + "\n"
                                     : inspect_text(inspection.report, line.show_config);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  if (inspection.problems.empty()) return kExitOk;
  const size_t more = inspection.problems.size() - 1;
  const std::string others = more == 0   ? ""
                             : more == 1 ? " (and 1 more problem)"
                                         : " (and " + std::to_string(more) + " more problems)";
  std::fprintf(stderr, "dgqa: damaged: %s%s\n", inspection.problems.front().c_str(),
               others.c_str());
  return kExitDamaged;
}

}  // namespace dgqa
