#include "cli/inspect_report.h"

#include <cstdint>
#include <cstdio>
#include <string>

namespace dgqa {
namespace {

using Json = nlohmann::ordered_json;

// A section title or an indented row, its value starting at one column for the whole report.
void line(std::string& text, const std::string& key, const std::string& value) {
  constexpr size_t kColumn = 24;
  std::string left = key;
  left.resize(std::max(left.size() + 1, kColumn), ' ');
  text += left + value + "\n";
}

void row(std::string& text, const std::string& key, const std::string& value) {
  line(text, "  " + key, value);
}

// 86567656 -> "86,567,656".
std::string grouped(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  for (int at = static_cast<int>(digits.size()) - 3; at > 0; at -= 3) digits.insert(at, ",");
  return (value < 0 ? "-" : "") + digits;
}

// A value as people read it: integers whole (grouped in thousands), other numbers to 6 digits,
// anything else (in a metrics.jsonl edited by hand) as JSON.
std::string shown(const Json& value, double scale = 1) {
  if (value.is_number_integer() && scale == 1) return grouped(value.get<int64_t>());
  if (!value.is_number()) return value.dump();
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", scale * value.get<double>());
  return text;
}

// The elements of an array, separated by spaces.
std::string spaced(const Json& values) {
  std::string text;
  for (const Json& value : values) text += (text.empty() ? "" : " ") + shown(value);
  return text;
}

std::string joined(const Json& words, const std::string& separator) {
  std::string text;
  for (const Json& word : words) text += (text.empty() ? "" : separator) + word.get<std::string>();
  return text;
}

// "last train      step 4, epoch 0: loss 1.36, lr 0.003" and its eval and allocation kin.
void metrics_rows(std::string& text, const Json& metrics) {
  if (metrics.is_null()) return row(text, "metrics", "no metrics.jsonl");
  const Json& train = metrics["last_train"];
  const Json& eval = metrics["last_eval"];
  const Json& allocation = metrics["last_allocation"];
  auto field = [](const Json& record, const char* key) {
    return record.contains(key) ? record[key] : Json();
  };
  if (!train.is_null()) {
    row(text, "last train",
        "step " + shown(field(train, "step")) + ", epoch " + shown(field(train, "epoch")) +
            ": loss " + shown(field(train, "loss")) + ", lr " + shown(field(train, "lr")));
  }
  if (!eval.is_null()) {
    row(text, "last eval",
        "step " + shown(field(eval, "step")) + ": loss " + shown(field(eval, "loss")) + ", top-1 " +
            shown(field(eval, "top1"), 100) + "% of " + shown(field(eval, "examples")) +
            " examples");
  }
  if (!allocation.is_null()) {
    std::string layers;
    const Json recorded = field(allocation, "layers");
    for (const Json& layer : recorded.is_array() ? recorded : Json::array()) {
      layers += (layers.empty() ? "" : " | ") + (layer.is_array() ? spaced(layer) : shown(layer));
    }
    row(text, "last allocation", "step " + shown(field(allocation, "step")) + ": " + layers);
  }
}

void run_section(std::string& text, const Json& run) {
  line(text, "run", run["dir"].get<std::string>());
  const int64_t checkpoints = run["checkpoints"].get<int64_t>();
  row(text, "checkpoints", checkpoints == 0 ? "none" : grouped(checkpoints));
  metrics_rows(text, run["metrics"]);
  const Json& weights = run["final_weights"];
  if (weights.is_null()) return row(text, "final weights", "none (the run has not finished)");
  std::string value = "model.safetensors";
  if (weights.contains("bytes"))
    value += ", " + grouped(weights["bytes"].get<int64_t>()) + " bytes";
  if (weights["parameters"].is_number()) {
    value += ", " + grouped(weights["parameters"].get<int64_t>()) + " parameters";
  }
  if (weights.contains("same_as_checkpoint")) {
    value += weights["same_as_checkpoint"].get<bool>() ? ", the same as the checkpoint's"
                                                       : ", not the checkpoint's";
  }
  row(text, "final weights", value + (weights["ok"].get<bool>() ? "" : ", damaged"));
}

bool ends_with(const std::string& text, const std::string& end) {
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

// A data file's row: "ok: 14,904 bytes, crc32 0c5e1a2f", or what does not match.
std::string file_status(const Json& file) {
  if (file["missing"].get<bool>()) return "missing";
  if (file["bytes"].is_null()) return "cannot be read";
  const std::string bytes = grouped(file["bytes"].get<int64_t>()) + " bytes";
  const std::string crc = "crc32 " + file["crc32"].get<std::string>();
  if (file["ok"].get<bool>()) return "ok: " + bytes + ", " + crc;
  if (file["bytes"] != file["recorded_bytes"]) {
    return "damaged: " + bytes + ", state.pbtxt records " +
           grouped(file["recorded_bytes"].get<int64_t>());
  }
  return "damaged: " + crc + ", state.pbtxt records " + file["recorded_crc32"].get<std::string>();
}

void checkpoint_section(std::string& text, const Json& checkpoint) {
  const Json& named_by = checkpoint["named_by"];
  line(text, "checkpoint",
       checkpoint["dir"].get<std::string>() + (named_by.is_null() ? "" : " (named by latest)"));
  if (checkpoint["step"].is_null()) {
    row(text, "step", "unknown (state.pbtxt cannot be read)");
  } else {
    row(text, "step",
        shown(checkpoint["step"]) + " (epoch " + shown(checkpoint["epoch"]) + ", batch_in_epoch " +
            shown(checkpoint["batch_in_epoch"]) + ")");
    row(text, "written by",
        "world size " + shown(checkpoint["world_size"]) + ", dgqa " +
            checkpoint["version"].get<std::string>() + ", seed " + checkpoint["seed"].dump());
  }
  const Json& state = checkpoint["state"];
  const Json& problems = state["problems"];
  const bool missing = !problems.empty() && ends_with(problems[0].get<std::string>(), ": missing");
  row(text, "state.pbtxt",
      state["ok"].get<bool>()               ? "ok: its checksum and contents hold"
      : state["checksum_holds"].get<bool>() ? "damaged: its checksum holds, its contents do not"
      : missing                             ? "damaged: missing"
      : checkpoint["step"].is_null()        ? "damaged: cannot be read"
                                            : "damaged: fails its checksum");
  for (const Json& file : checkpoint["files"]) {
    row(text, file["name"].get<std::string>(), file_status(file));
  }
  const Json& shards = checkpoint["optimizer_shards"];
  if (!shards.empty()) {
    std::string ranges;
    for (const Json& shard : shards) {
      ranges += (ranges.empty() ? "" : ", ") + shown(shard["begin"]) + ".." + shown(shard["end"]);
    }
    row(text, "optimizer shards",
        std::to_string(shards.size()) + " (ZeRO-1), of the flat buffer's floats " + ranges);
  }
  if (checkpoint["files"].empty()) row(text, "data files", "not checked: nothing to check against");
  row(text, "checksums", checkpoint["checksums_hold"].get<bool>() ? "all hold" : "do not all hold");
}

void file_section(std::string& text, const std::string& title, const Json& file) {
  line(text, title, file["file"].get<std::string>());
  row(text, "format",
      file["format"].get<std::string>() + ", " + grouped(file["tensors"].get<int64_t>()) +
          " tensors, " + grouped(file["bytes"].get<int64_t>()) + " bytes");
  std::string metadata;
  for (const auto& item : file["metadata"].items()) {
    metadata += (metadata.empty() ? "" : ", ") + item.key() + " " + item.value().get<std::string>();
  }
  if (!metadata.empty()) row(text, "metadata", metadata);
  if (file.contains("steps")) {
    row(text, "steps", file["steps"].is_null() ? "unknown" : file["steps"].dump());
  }
}

void model_section(std::string& text, const Json& model) {
  const Json& attention = model["attention"];
  line(text, "model",
       (attention.is_null() ? "scheme not recorded" : attention.get<std::string>()) +
           (model["from"] == "config" ? " (the checkpoint's config)" : " (read off the tensors)"));
  const int64_t channels = model["in_channels"].get<int64_t>();
  row(text, "image",
      model["image_size"].dump() + " x " + model["image_size"].dump() + ", " +
          std::to_string(channels) + (channels == 1 ? " channel" : " channels") + ", patch " +
          model["patch_size"].dump() + ": " + model["patches"].dump() + " patches, " +
          model["tokens"].dump() + " tokens");
  row(text, "width",
      "D " + model["embed_dim"].dump() + ", depth " + model["depth"].dump() + ", MLP " +
          model["mlp_dim"].dump());
  const std::string kv_width = "K/V width G*d " + model["kv_width"].dump();
  row(text, "heads",
      model["num_heads"].is_null()
          ? "H and G not recorded (" + kv_width + " of D " + model["embed_dim"].dump() + ")"
          : "H " + model["num_heads"].dump() + ", G " + model["num_kv_heads"].dump() +
                ", head width " + model["head_dim"].dump() + " (" + kv_width + ")");
  row(text, "classes", model["num_classes"].dump());
}

void allocation_section(std::string& text, const Json& allocation) {
  const std::string kind = allocation["kind"].get<std::string>();
  if (kind == "unknown" || kind == "per_pass") {
    return line(text, "allocation",
                (kind == "unknown" ? "not known: " : "") + allocation["why"].get<std::string>());
  }
  const bool dgqa = kind == "dgqa";
  line(text, "allocation",
       dgqa ? "DGQA's, query heads per K/V head, and cache (" +
                  allocation["source"].get<std::string>() + ")"
            : "fixed, query heads per K/V head");
  const Json& layers = allocation["layers"];
  for (size_t l = 0; l < layers.size(); ++l) {
    std::string value = spaced(layers[l]);
    if (dgqa) value += "    cache " + spaced(allocation["cache"][l]);
    row(text, "layer " + std::to_string(l), value);
  }
}

void parameters_section(std::string& text, const Json& parameters) {
  line(text, "parameters", grouped(parameters["total"].get<int64_t>()));
  const Json& parts = parameters["blocks"];
  for (const auto& group : parameters["groups"].items()) {
    std::string value = grouped(group.value().get<int64_t>());
    if (group.key() == "blocks") {
      value += " (attention " + grouped(parts["attention"].get<int64_t>()) + ", MLP " +
               grouped(parts["mlp"].get<int64_t>()) + ", norms " +
               grouped(parts["norms"].get<int64_t>()) + ")";
    }
    row(text, group.key(), value);
  }
}

// What could not be said, what is worth knowing, what is wrong, and the config.
void closing_sections(std::string& text, const Json& report, bool show_config) {
  if (report.contains("not_recorded") && !report["not_recorded"].empty()) {
    line(text, "not recorded", joined(report["not_recorded"], ", "));
  }
  for (const Json& note : report["notes"]) line(text, "note", note.get<std::string>());
  const Json& problems = report["problems"];
  if (!problems.empty()) {
    line(text, "problems", std::to_string(problems.size()));
    for (const Json& problem : problems) text += "  " + problem.get<std::string>() + "\n";
  }
  if (report.contains("config") && !show_config) {
    line(text, "config", "recorded; --show-config prints it");
  }
  line(text, "status",
       report["sound"].get<bool>() ? "sound"
                                   : "damaged (" + std::to_string(problems.size()) +
                                         (problems.size() == 1 ? " problem)" : " problems)"));
  if (report.contains("config") && show_config) {
    text += "config (recorded)\n";
    const std::string config = report["config"].get<std::string>();
    for (size_t at = 0; at < config.size();) {
      const size_t end = std::min(config.find('\n', at), config.size());
      text += "  " + config.substr(at, end - at) + "\n";
      at = end + 1;
    }
  }
}

}  // namespace

std::string inspect_text(const Json& report, bool show_config) {
  std::string text;
  const std::string kind = report["kind"].get<std::string>();
  if (report.contains("run")) run_section(text, report["run"]);
  if (report.contains("checkpoint")) checkpoint_section(text, report["checkpoint"]);
  if (kind == "weights" && report.contains("weights")) {
    file_section(text, "weights", report["weights"]);
  }
  if (report.contains("optimizer")) file_section(text, "optimizer", report["optimizer"]);
  if (report.contains("model")) model_section(text, report["model"]);
  if (report.contains("allocation")) allocation_section(text, report["allocation"]);
  if (report.contains("parameters")) parameters_section(text, report["parameters"]);
  closing_sections(text, report, show_config);
  return text;
}

}  // namespace dgqa
