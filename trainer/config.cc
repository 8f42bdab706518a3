#include "trainer/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <cerrno>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/error.h"
#include "kernels/cpu/threads.h"

namespace dgqa {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// ---- Messages -------------------------------------------------------------------------------

// Every config error reads `<source>: <field>: <what is wrong>`.
[[noreturn]] void fail(const std::string& source, const std::string& field,
                       const std::string& what) {
  throw InputError(source + ": " + field + ": " + what);
}

template <typename T>
std::string str(T value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

std::string quoted(const std::string& text) {
  return "\"" + text + "\"";
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

std::vector<std::string> field_names(const Descriptor& type) {
  std::vector<std::string> names;
  for (int i = 0; i < type.field_count(); ++i) names.push_back(type.field(i)->name());
  return names;
}

std::vector<std::string> enum_names(const EnumDescriptor& type) {
  std::vector<std::string> names;
  for (int i = 0; i < type.value_count(); ++i) names.push_back(type.value(i)->name());
  return names;
}

// ---- Reading the file -----------------------------------------------------------------------

// Keeps the first error of the text-format parser, which names the position of the problem.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (!message_.empty()) return;
    line_ = line;
    column_ = column;
    message_ = message;
  }

  // `path:line:column: message` (1-based, as compilers write it).
  std::string describe(const std::string& path) const {
    if (message_.empty()) return path + ": cannot parse the text";
    if (line_ < 0) return path + ": " + message_;
    return path + ":" + str(line_ + 1) + ":" + str(column_ + 1) + ": " + message_;
  }

 private:
  int line_ = -1;
  int column_ = -1;
  std::string message_;
};

}  // namespace

void parse_text_proto(const std::string& text, const std::string& path,
                      google::protobuf::Message* message) {
  FirstErrorCollector errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, message)) throw InputError(errors.describe(path));
}

namespace {

config::Config parse_config_file(const std::string& path) {
  if (std::filesystem::is_directory(path)) {
    throw InputError(path + ": cannot read the config file: it is a directory");
  }
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the config file: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError(path + ": cannot read the config file: " + std::strerror(errno));

  config::Config config;
  parse_text_proto(text.str(), path, &config);
  return config;
}

// ---- Overrides (--set field.path=value) -----------------------------------------------------

constexpr const char* kOverrideSource = "--set";

// The whole of `text` as a number of type T (no spaces, no trailing characters).
template <typename T>
T parse_number(const std::string& text, const std::string& field, const char* type_name) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error == std::errc::result_out_of_range) {
    fail(kOverrideSource, field, quoted(text) + " is out of range for " + type_name);
  }
  if (error != std::errc() || stop != end) {
    fail(kOverrideSource, field, quoted(text) + " is not a valid " + type_name);
  }
  return value;
}

// Floats go through double so that a value beyond float's range is reported as such.
double parse_real(const std::string& text, const std::string& field, const char* type_name,
                  double largest) {
  const double value = parse_number<double>(text, field, type_name);
  if (!std::isfinite(value)) fail(kOverrideSource, field, quoted(text) + " is not finite");
  if (std::fabs(value) > largest) {
    fail(kOverrideSource, field, quoted(text) + " is out of range for " + type_name);
  }
  return value;
}

bool parse_bool(const std::string& text, const std::string& field) {
  if (text == "true") return true;
  if (text == "false") return false;
  fail(kOverrideSource, field, quoted(text) + " is not a bool (true or false)");
}

const EnumValueDescriptor* parse_enum(const std::string& text, const FieldDescriptor& field,
                                      const std::string& path) {
  const EnumValueDescriptor* value = field.enum_type()->FindValueByName(text);
  if (value == nullptr) {
    fail(kOverrideSource, path,
         quoted(text) + " is not one of " + joined(enum_names(*field.enum_type())));
  }
  return value;
}

// Sets a singular field, or appends to a repeated one, from its text.
void set_from_text(Message& message, const FieldDescriptor& field, const std::string& text,
                   const std::string& path) {
  const Reflection& reflection = *message.GetReflection();
  const bool append = field.is_repeated();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      const auto value = parse_number<int32_t>(text, path, "int32");
      append ? reflection.AddInt32(&message, &field, value)
             : reflection.SetInt32(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      const auto value = parse_number<int64_t>(text, path, "int64");
      append ? reflection.AddInt64(&message, &field, value)
             : reflection.SetInt64(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      const auto value = parse_number<uint32_t>(text, path, "uint32");
      append ? reflection.AddUInt32(&message, &field, value)
             : reflection.SetUInt32(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      const auto value = parse_number<uint64_t>(text, path, "uint64");
      append ? reflection.AddUInt64(&message, &field, value)
             : reflection.SetUInt64(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      const auto value = static_cast<float>(parse_real(text, path, "float", FLT_MAX));
      append ? reflection.AddFloat(&message, &field, value)
             : reflection.SetFloat(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      const double value = parse_real(text, path, "double", DBL_MAX);
      append ? reflection.AddDouble(&message, &field, value)
             : reflection.SetDouble(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      const bool value = parse_bool(text, path);
      append ? reflection.AddBool(&message, &field, value)
             : reflection.SetBool(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const EnumValueDescriptor* value = parse_enum(text, field, path);
      append ? reflection.AddEnum(&message, &field, value)
             : reflection.SetEnum(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING:
      append ? reflection.AddString(&message, &field, text)
             : reflection.SetString(&message, &field, text);
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      fail(kOverrideSource, path,
           "is a group of settings; set one of its fields (" +
               joined(field_names(*field.message_type())) + ")");
  }
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string::size_type start = 0, stop;
  while ((stop = text.find(separator, start)) != std::string::npos) {
    parts.push_back(text.substr(start, stop - start));
    start = stop + 1;
  }
  parts.push_back(text.substr(start));
  return parts;
}

// The field named by `name` in `message`, or an error listing the fields it has.
const FieldDescriptor& find_field(const Message& message, const std::string& name,
                                  const std::string& path) {
  const Descriptor& type = *message.GetDescriptor();
  const FieldDescriptor* field = type.FindFieldByName(name);
  if (field == nullptr) {
    fail(kOverrideSource, path, "unknown field (valid: " + joined(field_names(type)) + ")");
  }
  return *field;
}

// Applies `field.path=value`: walks the dotted path through the nested messages, then sets
// the last field. A repeated field gets the comma-separated list (an empty value clears it).
void apply_override(config::Config& config, const std::string& assignment) {
  const auto equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    fail(kOverrideSource, quoted(assignment), "expected field.path=value");
  }
  const std::string path = assignment.substr(0, equals);
  const std::string value = assignment.substr(equals + 1);

  Message* message = &config;
  std::string walked;
  const std::vector<std::string> names = split(path, '.');
  for (size_t i = 0; i < names.size(); ++i) {
    walked += (i == 0 ? "" : ".") + names[i];
    const FieldDescriptor& field = find_field(*message, names[i], walked);
    if (i + 1 == names.size()) {
      if (field.is_repeated()) {
        message->GetReflection()->ClearField(message, &field);
        if (value.empty()) return;
        for (const std::string& item : split(value, ',')) {
          set_from_text(*message, field, item, path);
        }
      } else {
        set_from_text(*message, field, value, path);
      }
      return;
    }
    if (field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field.is_repeated()) {
      const std::string kind = field.is_repeated() ? "a list of " : "a ";
      fail(kOverrideSource, walked, "has no fields (it is " + kind + field.cpp_type_name() + ")");
    }
    message = message->GetReflection()->MutableMessage(message, &field);
  }
}

// ---- Model shape: presets and defaults ------------------------------------------------------

// timm's ViT shapes. All take 224x224 RGB images and 1000 classes (ImageNet).
struct ModelPreset {
  const char* name;
  int patch_size;
  int embed_dim;
  int depth;
  int num_heads;
};
constexpr ModelPreset kModelPresets[] = {
    {"vit_tiny", 16, 192, 12, 3},    {"vit_small", 16, 384, 12, 6},  {"vit_base", 16, 768, 12, 12},
    {"vit_large", 16, 1024, 24, 16}, {"vit_huge", 14, 1280, 32, 16},  // timm's ViT-H is patch 14
};

// The shape fields of config.proto's Model, and where each goes in ModelConfig.
struct ShapeField {
  const char* name;
  int ModelConfig::*member;
};
constexpr ShapeField kShapeFields[] = {
    {"image_size", &ModelConfig::image_size},   {"patch_size", &ModelConfig::patch_size},
    {"in_channels", &ModelConfig::in_channels}, {"num_classes", &ModelConfig::num_classes},
    {"embed_dim", &ModelConfig::embed_dim},     {"depth", &ModelConfig::depth},
    {"num_heads", &ModelConfig::num_heads},
};

void apply_preset(const std::string& name, ModelConfig& model, const std::string& source) {
  for (const ModelPreset& preset : kModelPresets) {
    if (name != preset.name) continue;
    model.image_size = 224;
    model.patch_size = preset.patch_size;
    model.in_channels = 3;
    model.num_classes = 1000;
    model.embed_dim = preset.embed_dim;
    model.depth = preset.depth;
    model.num_heads = preset.num_heads;
    return;
  }
  std::vector<std::string> valid;
  for (const ModelPreset& preset : kModelPresets) valid.push_back(preset.name);
  fail(source, "model.preset",
       "unknown preset " + quoted(name) + " (valid: " + joined(valid) + ")");
}

AttentionScheme attention_scheme(config::Attention attention, const std::string& source) {
  switch (attention) {
    case config::MHA:
      return AttentionScheme::kMHA;
    case config::GQA:
      return AttentionScheme::kGQA;
    case config::KDGQA:
      return AttentionScheme::kKDGQA;
    case config::DGQA_DIFF:
      return AttentionScheme::kDGQA_DIFF;
    case config::DGQA_EMA:
      return AttentionScheme::kDGQA_EMA;
    case config::PGQA:
      return AttentionScheme::kPGQA;
    case config::ATTENTION_UNSPECIFIED:
      break;
  }
  fail(source, "model.attention",
       "must be one of MHA, GQA, KDGQA, DGQA_DIFF, DGQA_EMA, PGQA, got " +
           config::Attention_Name(attention));
}

// The default G: half the query heads when that is a whole number above 0, else one K/V
// head per query head.
int default_num_kv_heads(int num_heads) {
  return num_heads > 1 && num_heads % 2 == 0 ? num_heads / 2 : num_heads;
}

ModelConfig resolve_model(const config::Model& proto, const std::string& source) {
  ModelConfig model;
  const bool has_preset = !proto.preset().empty();
  if (has_preset) apply_preset(proto.preset(), model, source);

  const Reflection& reflection = *proto.GetReflection();
  for (const ShapeField& shape : kShapeFields) {
    const FieldDescriptor* field = proto.GetDescriptor()->FindFieldByName(shape.name);
    if (reflection.HasField(proto, field)) {
      model.*shape.member = reflection.GetInt32(proto, field);
    } else if (!has_preset) {
      fail(source, std::string("model.") + shape.name, "required when model.preset is not set");
    }
  }

  model.attention = attention_scheme(proto.attention(), source);
  if (model.attention == AttentionScheme::kMHA) {
    model.num_kv_heads = model.num_heads;
  } else {
    model.num_kv_heads =
        proto.has_num_kv_heads() ? proto.num_kv_heads() : default_num_kv_heads(model.num_heads);
  }
  model.dgqa_window = proto.dgqa_window();
  model.dgqa_beta = proto.dgqa_beta();
  model.dgqa_eval = proto.dgqa_eval() == config::PER_BATCH          ? DgqaEvalMode::kPerBatch
                    : proto.dgqa_eval() == config::PER_BATCH_UPDATE ? DgqaEvalMode::kPerBatchUpdate
                                                                    : DgqaEvalMode::kFrozen;
  model.dgqa_window_counter = proto.dgqa_window_counter() == config::EPOCH_STEP
                                  ? DgqaWindowCounter::kEpochStep
                                  : DgqaWindowCounter::kGlobalStep;
  model.dgqa_fixup = proto.dgqa_fixup() == config::RANDOM_INDEX ? DgqaFixup::kRandomIndex
                                                                : DgqaFixup::kLargestRemainder;
  model.pgqa_eval_noise = proto.pgqa_eval_noise();
  model.init_std = proto.init_std();
  model.drop_path_rate = proto.drop_path_rate();
  return model;
}

// ---- Validation -----------------------------------------------------------------------------

// Checks with messages that name the field and the offending value. Comparisons are written
// so that NaN fails them.
}  // namespace

bool is_encoded_format(config::DataFormat format) {
  return format == config::IMAGE_FOLDER || format == config::FOOD101 ||
         format == config::TINY_IMAGENET || format == config::TAR_SHARDS;
}

bool uses_image_pipeline(const config::Data& data) {
  return is_encoded_format(data.format()) || data.random_resized_crop() ||
         data.rand_augment_num_ops() > 0 || data.eval_resize() == config::SHORTER_SIDE_CENTER_CROP;
}

namespace {

class Checker {
 public:
  explicit Checker(const std::string& source) : source_(source) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    dgqa::fail(source_, field, what);
  }
  void require(bool ok, const std::string& field, const std::string& what) const {
    if (!ok) fail(field, what);
  }
  template <typename T>
  void positive(const std::string& field, T value) const {
    require(value > 0, field, "must be positive, got " + str(value));
  }
  template <typename T>
  void at_least(const std::string& field, T value, T least) const {
    require(value >= least, field, "must be at least " + str(least) + ", got " + str(value));
  }
  // lo <= value <= hi, or lo <= value < hi when `open_above`.
  void in_range(const std::string& field, float value, float lo, float hi,
                bool open_above = false) const {
    const bool ok = value >= lo && (open_above ? value < hi : value <= hi);
    require(ok, field,
            "must be in [" + str(lo) + ", " + str(hi) + (open_above ? ")" : "]") + ", got " +
                str(value));
  }

 private:
  std::string source_;
};

// The counts the model keeps in int (tokens, MLP width, the length of a flattened patch),
// computed in 64 bits (or double) before they are narrowed. Memory is checked later, against
// the machine (trainer/memory_check.h).
void validate_extents(const ModelConfig& model, const Checker& check) {
  constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
  const int64_t patches = num_patches_of(model);
  check.require(patches < kMaxInt, "model.image_size",
                str(model.image_size) + " with model.patch_size = " + str(model.patch_size) +
                    " gives " + str(patches) + " patches, more than " + str(kMaxInt - 1));
  check.require(mlp_dim_of(model) <= kMaxInt, "model.embed_dim",
                str(model.embed_dim) + " gives an MLP width 4 * embed_dim = " +
                    str(mlp_dim_of(model)) + ", more than " + str(kMaxInt));
  const double patch_inputs =
      static_cast<double>(model.in_channels) * model.patch_size * model.patch_size;
  check.require(patch_inputs <= static_cast<double>(kMaxInt), "model.patch_size",
                str(model.patch_size) + " with model.in_channels = " + str(model.in_channels) +
                    " gives patches of more than " + str(kMaxInt) +
                    " values (in_channels * patch_size^2)");
}

// `model` is `proto` resolved (preset and defaults applied).
void validate_model(const config::Model& proto, const ModelConfig& model, const Checker& check) {
  for (const ShapeField& shape : kShapeFields) {
    check.positive(std::string("model.") + shape.name, model.*shape.member);
  }
  check.require(
      model.image_size % model.patch_size == 0, "model.image_size",
      str(model.image_size) + " is not divisible by model.patch_size = " + str(model.patch_size));
  check.require(
      model.embed_dim % model.num_heads == 0, "model.embed_dim",
      str(model.embed_dim) + " is not divisible by model.num_heads = " + str(model.num_heads));

  validate_extents(model, check);

  // G as the user wrote it (MHA would otherwise hide a wrong explicit value).
  const int G = proto.has_num_kv_heads() ? proto.num_kv_heads() : model.num_kv_heads;
  const int H = model.num_heads;
  const char* scheme = attention_scheme_name(model.attention);
  check.at_least("model.num_kv_heads", G, 1);
  check.require(G <= H, "model.num_kv_heads", str(G) + " exceeds model.num_heads = " + str(H));
  if (model.attention == AttentionScheme::kMHA) {
    check.require(G == H, "model.num_kv_heads",
                  str(G) + " differs from model.num_heads = " + str(H) +
                      " (MHA has one K/V head per query head; leave it unset)");
  }
  if (model.attention == AttentionScheme::kGQA || model.attention == AttentionScheme::kPGQA) {
    check.require(
        H % G == 0, "model.num_kv_heads",
        str(G) + " does not divide model.num_heads = " + str(H) + " (required for " + scheme + ")");
  }
  check.at_least("model.dgqa_window", proto.dgqa_window(), 1);
  check.in_range("model.dgqa_beta", proto.dgqa_beta(), 0.0f, 1.0f);
  check.at_least("model.init_std", proto.init_std(), 0.0f);
  check.in_range("model.drop_path_rate", proto.drop_path_rate(), 0.0f, 1.0f, /*open_above=*/true);
}

// The fields of the JPEG/PNG pipeline (data/image_pipeline.h), which stored formats use too
// when a random resized crop, RandAugment or a centre crop is asked for.
void validate_image_pipeline(const config::Data& data, int in_channels, const Checker& check) {
  if (!uses_image_pipeline(data)) return;
  check.require(in_channels == 1 || in_channels == 3, "model.in_channels",
                "must be 1 (L) or 3 (RGB) for the image pipeline, got " + str(in_channels));
  check.require(data.random_crop_padding() == 0, "data.random_crop_padding",
                "belongs to the stored formats' crop; with the image pipeline use "
                "data.random_resized_crop");
  for (const auto& [field, values] :
       {std::pair{"data.random_resized_crop_scale", &data.random_resized_crop_scale()},
        std::pair{"data.random_resized_crop_ratio", &data.random_resized_crop_ratio()}}) {
    check.require(values->empty() || values->size() == 2, field,
                  "give two values, [low, high], or none for the default");
    if (values->size() == 2) {
      check.require((*values)[0] > 0 && (*values)[0] <= (*values)[1], field,
                    "needs 0 < low <= high");
    }
  }
  if (data.random_resized_crop_scale_size() == 2) {
    check.require(data.random_resized_crop_scale(1) <= 1, "data.random_resized_crop_scale",
                  "is an area fraction: at most 1");
  }
  check.at_least("data.rand_augment_num_ops", data.rand_augment_num_ops(), 0);
  check.at_least("data.rand_augment_num_bins", data.rand_augment_num_bins(), 2);
  check.in_range("data.rand_augment_magnitude", data.rand_augment_magnitude(), 0,
                 data.rand_augment_num_bins() - 1);
  check.require(data.crop_pct() > 0 && data.crop_pct() <= 1, "data.crop_pct",
                "must be in (0, 1], got " + std::to_string(data.crop_pct()));
}

void validate_data(const config::Data& data, int in_channels, const Checker& check) {
  const std::string format = config::DataFormat_Name(data.format());
  switch (data.format()) {
    case config::IDX: {
      const std::pair<const char*, const std::string*> files[] = {
          {"data.train_images", &data.train_images()},
          {"data.train_labels", &data.train_labels()},
          {"data.test_images", &data.test_images()},
          {"data.test_labels", &data.test_labels()},
      };
      for (const auto& [field, file] : files) {
        check.require(!file->empty(), field, "required for data.format " + format);
      }
      break;
    }
    case config::CIFAR10:
    case config::CIFAR100:
      check.require(!data.root().empty(), "data.root", "required for data.format " + format);
      break;
    case config::IMAGE_FOLDER:
    case config::FOOD101:
    case config::TINY_IMAGENET:
      check.require(!data.root().empty(), "data.root", "required for data.format " + format);
      break;
    case config::TAR_SHARDS:
      check.require(!data.train_shards().empty(), "data.train_shards",
                    "required for data.format " + format);
      check.require(!data.val_shards().empty(), "data.val_shards",
                    "required for data.format " + format);
      break;
    case config::DATA_FORMAT_UNSPECIFIED:
      check.fail("data.format",
                 "must be one of IDX, CIFAR10, CIFAR100, IMAGE_FOLDER, FOOD101, TINY_IMAGENET, "
                 "TAR_SHARDS");
  }
  validate_image_pipeline(data, in_channels, check);

  // Per-channel statistics: none (defaults), one for all channels, or one per channel.
  for (const auto& [field, values] :
       {std::pair{"data.mean", &data.mean()}, std::pair{"data.std", &data.std()}}) {
    const int count = values->size();
    check.require(
        count == 0 || count == 1 || count == in_channels, field,
        "has " + str(count) + " values; give 0, 1 or model.in_channels = " + str(in_channels));
    for (float value : *values) check.require(std::isfinite(value), field, "values must be finite");
  }
  for (float value : data.std()) check.positive("data.std", value);
  check.at_least("data.random_crop_padding", data.random_crop_padding(), 0);
  check.at_least("data.prefetch_batches", data.prefetch_batches(), 0);
  check.in_range("data.workers", data.workers(), 0, 256);
}

// The fields of the schedules beyond CONSTANT and COSINE and of the warm-up's start factor.
void validate_fine_tuning_schedule(const config::Schedule& schedule, const Checker& check) {
  if (schedule.has_warmup_start_factor()) {
    const float f = schedule.warmup_start_factor();
    check.require(f > 0 && f <= 1, "schedule.warmup_start_factor",
                  "must be in (0, 1], got " + str(f));
    check.require(schedule.warmup_steps() >= 1, "schedule.warmup_start_factor",
                  "needs schedule.warmup_steps >= 1");
  }
  check.at_least<int64_t>("schedule.step_size", schedule.step_size(), 1);
  check.require(schedule.gamma() > 0 && schedule.gamma() <= 1, "schedule.gamma",
                "must be in (0, 1], got " + str(schedule.gamma()));
  const auto& milestones = schedule.milestones();
  check.require(schedule.kind() != config::MULTI_STEP || !milestones.empty(), "schedule.milestones",
                "required for schedule.kind MULTI_STEP");
  if (schedule.kind() == config::COSINE_RESTARTS) {
    check.at_least<int64_t>("schedule.cycle_steps", schedule.cycle_steps(), 1);
  }
  check.at_least("schedule.cycle_mul", schedule.cycle_mul(), 1.0f);
  check.require(schedule.cycle_decay() > 0 && schedule.cycle_decay() <= 1, "schedule.cycle_decay",
                "must be in (0, 1], got " + str(schedule.cycle_decay()));
  check.at_least("schedule.cycle_limit", schedule.cycle_limit(), 0);
  for (int i = 0; i < milestones.size(); ++i) {
    check.require(milestones[i] >= 1 && (i == 0 || milestones[i] > milestones[i - 1]),
                  "schedule.milestones",
                  "must be positive and strictly increasing, got " + str(milestones[i]) +
                      " at position " + str(i));
  }
}

void validate_optimizer(const config::Optimizer& optimizer, const config::Schedule& schedule,
                        const Checker& check) {
  // The ranges torch.optim.AdamW accepts.
  check.at_least("optimizer.lr", optimizer.lr(), 0.0f);
  check.at_least("optimizer.weight_decay", optimizer.weight_decay(), 0.0f);
  check.in_range("optimizer.beta1", optimizer.beta1(), 0.0f, 1.0f, /*open_above=*/true);
  check.in_range("optimizer.beta2", optimizer.beta2(), 0.0f, 1.0f, /*open_above=*/true);
  check.at_least("optimizer.eps", optimizer.eps(), 0.0f);
  check.at_least("optimizer.grad_clip", optimizer.grad_clip(), 0.0f);
  check.in_range("optimizer.label_smoothing", optimizer.label_smoothing(), 0.0f, 1.0f,
                 /*open_above=*/true);
  check.require(optimizer.layer_decay() > 0 && optimizer.layer_decay() <= 1,
                "optimizer.layer_decay",
                "must be in (0, 1] (1 = off), got " + str(optimizer.layer_decay()));
  check.at_least("schedule.warmup_steps", schedule.warmup_steps(), 0);
  check.at_least("schedule.min_lr", schedule.min_lr(), 0.0f);
  validate_fine_tuning_schedule(schedule, check);
}

void validate_train(const config::Train& train, const Checker& check) {
  check.positive("train.global_batch_size", train.global_batch_size());
  check.positive("train.eval_batch_size", train.eval_batch_size());
  check.at_least("train.micro_batch_size", train.micro_batch_size(), 0);
  check.require(
      train.micro_batch_size() == 0 || train.global_batch_size() % train.micro_batch_size() == 0,
      "train.micro_batch_size",
      str(train.micro_batch_size()) + " does not divide train.global_batch_size " +
          str(train.global_batch_size()));
  check.at_least<int64_t>("train.max_steps", train.max_steps(), 0);
  if (train.max_steps() == 0) {
    check.require(train.epochs() >= 1, "train.epochs",
                  "must be at least 1 when train.max_steps is 0, got " + str(train.epochs()));
  }
  check.at_least<int64_t>("train.eval_every_steps", train.eval_every_steps(), 0);
  check.at_least<int64_t>("train.log_every_steps", train.log_every_steps(), 1);
  check.in_range("train.ema_decay", train.ema_decay(), 0.0f, 1.0f, /*open_above=*/true);
  check.require(!train.ema_warmup() || train.ema_decay() > 0, "train.ema_warmup",
                "needs train.ema_decay > 0 (0 turns the weight EMA off)");
  check.require(train.threads() >= 0 && train.threads() <= cpu::kMaxThreads, "train.threads",
                "must be in [0, " + str(cpu::kMaxThreads) +
                    "] (0 = the cores, shared among the ranks), got " + str(train.threads()));

#ifdef DGQA_WITH_CUDA
  const bool known_backend = train.backend() == "cpu" || train.backend() == "cuda";
  const char* valid_backends = "cpu, cuda";
#else
  check.require(train.backend() != "cuda", "train.backend",
                "\"cuda\" needs a build configured with -DDGQA_CUDA=ON");
  const bool known_backend = train.backend() == "cpu";
  const char* valid_backends = "cpu";
#endif
  check.require(known_backend, "train.backend",
                "unknown backend " + quoted(train.backend()) + " (valid: " + valid_backends + ")");
}

void validate_dist(const config::Dist& dist, const std::string& train_backend,
                   const Checker& check) {
  check.positive("dist.bucket_mb", dist.bucket_mb());
  check.positive("dist.timeout_s", dist.timeout_s());
  check.require(dist.backend() != config::NCCL || train_backend == "cuda", "dist.backend",
                "NCCL needs train.backend \"cuda\"");
  check.require(dist.zero_stage() == 0 || dist.zero_stage() == 1, "dist.zero_stage",
                "must be 0 (off) or 1 (AdamW's moments sharded over the ranks), got " +
                    str(dist.zero_stage()));
}

// `image_size` and `global_batch` are the model's and the training's.
void validate_mixup(const config::Mixup& mixup, int image_size, int global_batch,
                    const Checker& check) {
  check.at_least("mixup.mixup_alpha", mixup.mixup_alpha(), 0.0f);
  check.at_least("mixup.cutmix_alpha", mixup.cutmix_alpha(), 0.0f);
  check.require(std::isfinite(mixup.mixup_alpha()), "mixup.mixup_alpha", "must be finite");
  check.require(std::isfinite(mixup.cutmix_alpha()), "mixup.cutmix_alpha", "must be finite");
  check.in_range("mixup.prob", mixup.prob(), 0.0f, 1.0f);
  check.in_range("mixup.switch_prob", mixup.switch_prob(), 0.0f, 1.0f);
  const auto& minmax = mixup.cutmix_minmax();
  check.require(minmax.empty() || minmax.size() == 2, "mixup.cutmix_minmax",
                "needs two values [min, max], got " + str(minmax.size()));
  if (minmax.size() == 2) {
    check.require(
        minmax[0] > 0 && minmax[0] < minmax[1] && minmax[1] <= 1, "mixup.cutmix_minmax",
        "must satisfy 0 < min < max <= 1, got [" + str(minmax[0]) + ", " + str(minmax[1]) + "]");
    // The box sides are drawn from [int(min * size), int(max * size)), as timm's.
    check.require(
        static_cast<int>(minmax[0] * image_size) < static_cast<int>(minmax[1] * image_size),
        "mixup.cutmix_minmax",
        "[" + str(minmax[0]) + ", " + str(minmax[1]) + "] of model.image_size " + str(image_size) +
            " leaves no box side to draw");
  }
  const bool on = mixup.mixup_alpha() > 0 || mixup.cutmix_alpha() > 0 || !minmax.empty();
  check.require(
      !on || global_batch % 2 == 0, "train.global_batch_size",
      "must be even with mixup (images are mixed in pairs g, B - 1 - g), got " + str(global_batch));
}

void validate_checkpoint(const config::Checkpoint& checkpoint, const Checker& check) {
  check.at_least<int64_t>("checkpoint.every_steps", checkpoint.every_steps(), 0);
  check.at_least("checkpoint.keep_last", checkpoint.keep_last(), 0);
}

}  // namespace

config::Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  config::Config config = parse_config_file(path);
  for (const std::string& assignment : overrides) apply_override(config, assignment);
  // With overrides, an impossible combination may come from either place.
  validate_config(config, overrides.empty() ? path : path + " with --set overrides");
  return config;
}

void validate_config(const config::Config& config, const std::string& source) {
  const Checker check(source);
  const ModelConfig model = resolve_model(config.model(), source);
  validate_model(config.model(), model, check);
  validate_data(config.data(), model.in_channels, check);
  validate_optimizer(config.optimizer(), config.schedule(), check);
  validate_train(config.train(), check);
  validate_dist(config.dist(), config.train().backend(), check);
  check.require(config.model().precision() != config::BF16 || config.train().backend() == "cuda",
                "model.precision", "BF16 needs train.backend \"cuda\" (the CPU computes in fp32)");
  validate_checkpoint(config.checkpoint(), check);
  validate_mixup(config.mixup(), model.image_size, config.train().global_batch_size(), check);
}

ModelConfig model_config_from(const config::Config& config) {
  return resolve_model(config.model(), "config");
}

BackendOptions backend_options_from(const config::Config& config, int local_rank) {
  BackendOptions options;
  options.name = config.train().backend();
  options.local_rank = local_rank;
  const config::Precision precision = config.model().precision();
  const bool bf16 = precision == config::BF16 ||
                    (precision == config::PRECISION_DEFAULT && options.name == "cuda");
  options.precision = bf16 ? Precision::kBF16 : Precision::kFP32;
  return options;
}

std::string config_to_text(const config::Config& config) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  return text;
}

}  // namespace dgqa
