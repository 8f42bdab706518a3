#include "trainer/checkpoint.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "common/atomic_file.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "model/param_layout.h"

namespace dgqa {
namespace fs = std::filesystem;
namespace {

constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kStateFile = "state.pbtxt";
constexpr const char* kStepsTensor = "optimizer.steps";
constexpr const char* kEmaPrefix = "ema.";
constexpr const char* kFirstMoment = "exp_avg.";
constexpr const char* kSecondMoment = "exp_avg_sq.";
// A ZeRO-1 shard file holds the moments of one range of the flat buffer as one tensor each.
constexpr const char* kShardMomentsName = "flat";

// The file of shard `index` (from 0) of `count`: optimizer.shard-00001-of-00004.safetensors.
std::string shard_file_name(int index, int count) {
  char name[64];
  std::snprintf(name, sizeof(name), "optimizer.shard-%05d-of-%05d.safetensors", index + 1, count);
  return name;
}

std::string step_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step_%08lld", static_cast<long long>(step));
  return name;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot be read");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

uint32_t crc_of(const std::string& bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib's crc32 takes at most 4 GiB at a time.
  for (size_t done = 0; done < bytes.size();) {
    const size_t chunk = std::min<size_t>(bytes.size() - done, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), chunk);
    done += chunk;
  }
  return static_cast<uint32_t>(crc);
}

// state.pbtxt ends with the line "# crc32: XXXXXXXX", the CRC-32 of the text before it (a
// comment to the protobuf text parser).
constexpr const char* kSealPrefix = "# crc32: ";

std::string seal_line(const std::string& text) {
  char line[32];
  std::snprintf(line, sizeof(line), "%s%08x\n", kSealPrefix, static_cast<unsigned>(crc_of(text)));
  return line;
}

std::string sealed(const std::string& text) {
  return text + seal_line(text);
}

void fsync_directory(const fs::path& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: some file systems refuse
  fsync(fd);
  close(fd);
}

// AdamW's step count, its moments unless they go into shard files (ZeRO-1), and the weight EMA
// (when there is one) as ema.X.
void write_optimizer(const AdamW& optimizer, const WeightEma* ema, const ParamLayout& layout,
                     bool with_moments, const std::string& path) {
  const std::vector<float> first =
      with_moments ? optimizer.first_moments_to_host() : std::vector<float>();
  const std::vector<float> second =
      with_moments ? optimizer.second_moments_to_host() : std::vector<float>();
  const std::vector<float> average = ema ? ema->to_host() : std::vector<float>();
  SafetensorsWriter writer;
  for (const TensorSlot& slot : layout.tensors()) {
    if (with_moments) {
      writer.add_f32(kFirstMoment + slot.name, slot.shape, first.data() + slot.offset);
      writer.add_f32(kSecondMoment + slot.name, slot.shape, second.data() + slot.offset);
    }
    if (ema) writer.add_f32(kEmaPrefix + slot.name, slot.shape, average.data() + slot.offset);
  }
  const int64_t steps = optimizer.steps_taken();
  writer.add_i64(kStepsTensor, {1}, &steps);
  writer.write(path);
}

// ZeRO-1: this rank's shard of the moments, as exp_avg.flat and exp_avg_sq.flat, and the step
// count.
void write_optimizer_shard(const AdamW& optimizer, const std::string& path) {
  const std::vector<float> first = optimizer.first_moments_to_host();
  const std::vector<float> second = optimizer.second_moments_to_host();
  const std::vector<int64_t> shape = {static_cast<int64_t>(first.size())};
  SafetensorsWriter writer;
  writer.add_f32(kFirstMoment + std::string(kShardMomentsName), shape, first.data());
  writer.add_f32(kSecondMoment + std::string(kShardMomentsName), shape, second.data());
  const int64_t steps = optimizer.steps_taken();
  writer.add_i64(kStepsTensor, {1}, &steps);
  writer.write(path);
}

// The checkpoint directories under out_dir/checkpoints, newest first.
std::vector<fs::path> checkpoint_dirs(const fs::path& root) {
  std::vector<fs::path> dirs;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(root, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step_", 0) == 0 && name.size() == 13) {
      dirs.push_back(entry.path());
    }
  }
  std::sort(dirs.rbegin(), dirs.rend());
  return dirs;
}

// What makes two models incompatible: the tensor names and shapes and the scheme.
std::string model_signature(const config::Config& config) {
  const ModelConfig model = model_config_from(config);
  std::string signature = attention_scheme_name(model.attention);
  const ParamLayout layout(model);
  for (const TensorSlot& slot : layout.tensors()) {
    signature += " " + slot.name;
    for (int64_t extent : slot.shape) signature += "," + std::to_string(extent);
  }
  return signature;
}

// Whether the two configs' models are compatible. A layout holds tensors per layer, so the depths
// are compared first: a recorded depth of 2e9 would need gigabytes for its layout alone.
bool same_model(const config::Config& a, const config::Config& b) {
  return model_config_from(a).depth == model_config_from(b).depth &&
         model_signature(a) == model_signature(b);
}

// Temporary directories of checkpoints whose writing was interrupted (a killed process).
void remove_unfinished_checkpoints(const fs::path& root) {
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(root, error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".step_", 0) == 0 && name.find(".tmp.") != std::string::npos) {
      fs::remove_all(entry.path(), error);
    }
  }
}

// A shard file of ZeRO-1, as state.pbtxt records it.
struct ShardRecord {
  checkpoint::OptimizerShard shard;
  checkpoint::FileChecksum checksum;
};

// The file's name, size and CRC-32, as state.pbtxt records them.
checkpoint::FileChecksum checksum_of(const fs::path& dir, const std::string& name) {
  const std::string bytes = read_file(dir / name);
  checkpoint::FileChecksum checksum;
  checksum.set_name(name);
  checksum.set_bytes(static_cast<int64_t>(bytes.size()));
  checksum.set_crc32(crc_of(bytes));
  return checksum;
}

// The model and optimizer files and state.pbtxt (listing the shard files), written and fsync'd
// into `dir`.
void write_checkpoint_files(const fs::path& dir, const VisionTransformer& model,
                            const AdamW& optimizer, const WeightEma* ema,
                            const TrainingPosition& position, const config::Config& config,
                            int world_size, const std::vector<ShardRecord>& shards) {
  save_weights(model, (dir / kModelFile).string());
  write_optimizer(optimizer, ema, model.layout(), shards.empty(), (dir / kOptimizerFile).string());

  checkpoint::State state;
  state.set_step(position.step);
  state.set_epoch(position.epoch);
  state.set_batch_in_epoch(position.batch_in_epoch);
  state.set_log_window_images(position.log_window_images);
  state.set_log_window_correct(position.log_window_correct);
  state.set_log_window_bad_images(position.log_window_bad_images);
  state.set_seed(config.seed());
  state.set_world_size(world_size);
  state.set_version(DGQA_VERSION);
  for (const char* file : {kModelFile, kOptimizerFile}) *state.add_files() = checksum_of(dir, file);
  for (const ShardRecord& record : shards) {
    *state.add_files() = record.checksum;
    *state.add_optimizer_shards() = record.shard;
  }
  for (const GroupAllocator& allocator : model.allocators()) {
    checkpoint::LayerState* layer = state.add_layers();
    for (float value : allocator.cache()) layer->add_cache(value);
    for (int count : allocator.allocation()) layer->add_allocation(count);
  }
  *state.mutable_config() = config;
  std::string text;
  google::protobuf::TextFormat::PrintToString(state, &text);
  text = sealed(text);
  AtomicFileWriter state_file((dir / kStateFile).string());
  state_file.append(text.data(), text.size());
  state_file.commit();
  fsync_directory(dir);
}

fs::path temporary_dir(const fs::path& root, const std::string& name, uint64_t pid) {
  return root / ("." + name + ".tmp." + std::to_string(pid));
}

// Rank 0 makes the temporary directory of checkpoint `name` under root (named after its process)
// and every rank learns its path. When rank 0 fails, every rank throws.
fs::path make_temporary_dir(const fs::path& root, const std::string& name, Communicator& comm) {
  uint64_t pid = 0;  // stays 0 when rank 0 fails
  std::exception_ptr failure;
  if (comm.rank() == 0) {
    try {
      fs::create_directories(root);
      remove_unfinished_checkpoints(root);
      fs::create_directory(temporary_dir(root, name, getpid()));
      pid = static_cast<uint64_t>(getpid());
    } catch (...) {
      failure = std::current_exception();
    }
  }
  comm.broadcast(&pid, sizeof(pid), 0, "checkpoint directory broadcast");
  if (failure) std::rethrow_exception(failure);
  if (pid == 0) {
    throw std::runtime_error("checkpoint: rank 0 could not make a directory under " +
                             root.string());
  }
  return temporary_dir(root, name, pid);
}

// The size of a shard file that could not be written.
constexpr uint64_t kShardNotWritten = ~uint64_t{0};

// ZeRO-1: every rank writes its shard of the moments into dir; their records, in rank order.
// When a rank fails, it logs why and every rank throws, naming the ranks that failed.
std::vector<ShardRecord> write_optimizer_shards(const fs::path& dir, const AdamW& optimizer,
                                                Communicator& comm) {
  const std::string name = shard_file_name(comm.rank(), comm.world_size());
  checkpoint::FileChecksum mine;
  mine.set_bytes(static_cast<int64_t>(kShardNotWritten));
  try {
    write_optimizer_shard(optimizer, (dir / name).string());
    mine = checksum_of(dir, name);
  } catch (const std::exception& failure) {
    LOG(ERROR) << "rank " << comm.rank() << ": " << failure.what();
  }
  const char* what = "checkpoint shard all-gather";
  const std::vector<uint64_t> sizes = comm.all_gather(static_cast<uint64_t>(mine.bytes()), what);
  const std::vector<uint64_t> crcs = comm.all_gather(mine.crc32(), what);
  const std::vector<uint64_t> begins =
      comm.all_gather(static_cast<uint64_t>(optimizer.shard_begin()), what);
  const std::vector<uint64_t> ends =
      comm.all_gather(static_cast<uint64_t>(optimizer.shard_end()), what);
  std::string failed;
  std::vector<ShardRecord> records(comm.world_size());
  for (int rank = 0; rank < comm.world_size(); ++rank) {
    if (sizes[rank] == kShardNotWritten) failed += " " + std::to_string(rank);
    ShardRecord& record = records[rank];
    record.checksum.set_name(shard_file_name(rank, comm.world_size()));
    record.checksum.set_bytes(static_cast<int64_t>(sizes[rank]));
    record.checksum.set_crc32(static_cast<uint32_t>(crcs[rank]));
    record.shard.set_file(record.checksum.name());
    record.shard.set_begin(static_cast<int64_t>(begins[rank]));
    record.shard.set_end(static_cast<int64_t>(ends[rank]));
  }
  if (!failed.empty()) {
    throw std::runtime_error("checkpoint " + dir.string() + ": the optimizer shard of rank(s)" +
                             failed + " could not be written (see that rank's log)");
  }
  return records;
}

}  // namespace

TrainingPosition position_of(const checkpoint::State& state) {
  TrainingPosition position;
  position.step = state.step();
  position.epoch = state.epoch();
  position.batch_in_epoch = state.batch_in_epoch();
  position.log_window_images = state.log_window_images();
  position.log_window_correct = state.log_window_correct();
  position.log_window_bad_images = state.log_window_bad_images();
  return position;
}

std::string write_checkpoint(const std::string& out_dir, const VisionTransformer& model,
                             const AdamW& optimizer, const WeightEma* ema,
                             const TrainingPosition& position, const config::Config& config,
                             Communicator& comm, int keep_last) {
  const fs::path root = fs::path(out_dir) / "checkpoints";
  const std::string name = step_name(position.step);
  const fs::path final_dir = root / name;
  const fs::path temp_dir = make_temporary_dir(root, name, comm);
  try {
    std::vector<ShardRecord> shards;
    if (config.dist().zero_stage() == 1) shards = write_optimizer_shards(temp_dir, optimizer, comm);
    if (comm.rank() == 0) {
      write_checkpoint_files(temp_dir, model, optimizer, ema, position, config, comm.world_size(),
                             shards);
    }
  } catch (...) {
    std::error_code ignored;
    if (comm.rank() == 0) fs::remove_all(temp_dir, ignored);  // a failed write leaves nothing
    throw;
  }
  if (comm.rank() != 0) return final_dir.string();

  // Into place: a checkpoint of the same step (a resumed run repeating it) is replaced whole.
  if (fs::exists(final_dir)) fs::remove_all(final_dir);
  fs::rename(temp_dir, final_dir);
  fsync_directory(root);
  AtomicFileWriter latest((root / "latest").string());
  latest.append(name.data(), name.size());
  latest.commit();

  if (keep_last > 0) {
    const std::vector<fs::path> dirs = checkpoint_dirs(root);
    for (size_t i = keep_last; i < dirs.size(); ++i) {
      if (dirs[i] != final_dir) fs::remove_all(dirs[i]);
    }
  }
  return final_dir.string();
}

namespace {

// The checkpoint directory a user means: the path itself, or, for the file OUT/checkpoints/latest
// or a directory without a state.pbtxt of its own holding one (OUT/checkpoints) or under
// checkpoints/ (OUT), the checkpoint that `latest` names (then *used_latest is that file).
fs::path checkpoint_named_by(const fs::path& path, fs::path* used_latest = nullptr) {
  std::error_code error;
  auto named_by = [used_latest](const fs::path& latest) {
    if (used_latest != nullptr) *used_latest = latest;
    std::string name = read_file(latest);
    name.erase(name.find_last_not_of(" \t\r\n") + 1);
    return latest.parent_path() / name;
  };
  if (path.filename() == "latest" && fs::is_regular_file(path, error)) return named_by(path);
  if (!fs::is_directory(path, error) || fs::exists(path / kStateFile, error)) return path;
  for (const fs::path& latest : {path / "latest", path / "checkpoints" / "latest"}) {
    if (fs::is_regular_file(latest, error)) return named_by(latest);
  }
  return path;
}

[[noreturn]] void refuse(const std::string& source, const std::string& field,
                         const std::string& what) {
  throw InputError(source + ": " + field + ": " + what);
}

// The text of state.pbtxt without its checksum line, which must match it.
std::string checked_state_text(const fs::path& file) {
  const std::string text = read_file(file);
  const size_t seal_at = text.rfind(kSealPrefix);
  if (seal_at == std::string::npos || (seal_at > 0 && text[seal_at - 1] != '\n')) {
    throw InputError(file.string() + ": has no checksum line \"" + kSealPrefix +
                     "...\" at its end (edited or damaged, or written by an older dgqa, whose " +
                     "checkpoints are not read)");
  }
  const std::string body = text.substr(0, seal_at);
  if (text.compare(seal_at, std::string::npos, seal_line(body)) != 0) {
    throw InputError(file.string() + ": fails its checksum (the file was edited or is damaged)");
  }
  return body;
}

// The recorded config passes the checks of a fresh one. The settings that depend on the build
// and machine reading it (backends, precision) are the current config's.
void check_recorded_config(const checkpoint::State& state, const config::Config& current,
                           const std::string& source) {
  if (!state.has_config()) refuse(source, "config", "missing");
  config::Config recorded = state.config();
  recorded.mutable_train()->set_backend(current.train().backend());
  recorded.mutable_model()->set_precision(current.model().precision());
  recorded.mutable_dist()->set_backend(current.dist().backend());
  validate_config(recorded, source);
  if (state.seed() != recorded.seed()) {
    refuse(source, "seed",
           std::to_string(state.seed()) +
               " differs from config.seed = " + std::to_string(recorded.seed()));
  }
  if (state.world_size() < 1) {
    refuse(source, "world_size", "must be at least 1, got " + std::to_string(state.world_size()));
  }
}

// The log window's counts: 0 <= correct, bad images <= images <= step * global batch.
void check_log_window(const checkpoint::State& state, const std::string& source) {
  const int64_t images = state.log_window_images();
  const double most = static_cast<double>(state.step()) *
                      static_cast<double>(state.config().train().global_batch_size());
  if (images < 0 || static_cast<double>(images) > most) {
    refuse(source, "log_window_images",
           std::to_string(images) + " is not between 0 and the images of " +
               std::to_string(state.step()) + " steps");
  }
  for (const auto& [field, count] :
       {std::pair{"log_window_correct", state.log_window_correct()},
        std::pair{"log_window_bad_images", state.log_window_bad_images()}}) {
    if (count < 0 || count > images) {
      refuse(source, field,
             std::to_string(count) +
                 " is not between 0 and log_window_images = " + std::to_string(images));
    }
  }
}

// 0 <= step <= train.max_steps (when set); epoch and batch_in_epoch fit the step:
// step = epoch * steps_per_epoch + batch_in_epoch with 0 <= batch_in_epoch < steps_per_epoch,
// and the epoch is within train.epochs (when it bounds the run); the log window fits the step.
void check_position(const checkpoint::State& state, const std::string& source) {
  const int64_t step = state.step(), epoch = state.epoch(), batch = state.batch_in_epoch();
  const config::Train& train = state.config().train();
  const std::string position = "step " + std::to_string(step) + ", epoch " + std::to_string(epoch) +
                               ", batch_in_epoch " + std::to_string(batch);
  if (step < 0) refuse(source, "step", "must be at least 0, got " + std::to_string(step));
  if (train.max_steps() > 0 && step > train.max_steps()) {
    refuse(source, "step",
           std::to_string(step) +
               " is beyond the run's train.max_steps = " + std::to_string(train.max_steps()));
  }
  const bool fits =
      epoch >= 0 && batch >= 0 && batch <= step &&
      (epoch == 0 ? batch == step : (step - batch) % epoch == 0 && (step - batch) / epoch > batch);
  if (!fits) refuse(source, "epoch", position + " do not fit together");
  if (train.max_steps() == 0 &&
      (epoch > train.epochs() || (epoch == train.epochs() && batch > 0))) {
    refuse(source, "epoch",
           position + " is beyond the run's train.epochs = " + std::to_string(train.epochs()));
  }
  check_log_window(state, source);
}

bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// The files are model.safetensors, optimizer.safetensors and the shard files of
// optimizer_shards, if any, named as plain names inside the checkpoint directory.
void check_file_names(const checkpoint::State& state, const std::string& source) {
  std::vector<std::string> expected = {kModelFile, kOptimizerFile};
  const int shards = state.optimizer_shards_size();
  for (int i = 0; i < shards; ++i) expected.push_back(shard_file_name(i, shards));
  if (state.files_size() != static_cast<int>(expected.size())) {
    refuse(source, "files",
           "lists " + std::to_string(state.files_size()) + " files, not the " +
               std::to_string(expected.size()) + " " + kModelFile + ", " + kOptimizerFile +
               " and the files of " + std::to_string(shards) + " optimizer_shards");
  }
  for (int i = 0; i < state.files_size(); ++i) {
    const std::string& name = state.files(i).name();
    const std::string field = "files[" + std::to_string(i) + "].name";
    if (!is_plain_file_name(name)) {
      refuse(source, field,
             "\"" + name + "\" is not a plain file name inside the checkpoint directory");
    }
    if (name != expected[i]) refuse(source, field, "is \"" + name + "\", not " + expected[i]);
  }
}

// The manifest of a ZeRO-1 checkpoint: one shard per rank of the job that wrote it, each naming
// its file, their ranges following each other from 0 to the end of the parameter buffer. The
// recorded config must have passed its checks.
void check_optimizer_shards(const checkpoint::State& state, const std::string& source) {
  const int shards = state.optimizer_shards_size();
  if (shards == 0) return;
  if (shards != state.world_size()) {
    refuse(source, "optimizer_shards",
           "lists " + std::to_string(shards) + " shards, not one for each of world_size " +
               std::to_string(state.world_size()) + " ranks");
  }
  const int64_t size = ParamLayout(model_config_from(state.config())).total_size();
  int64_t covered = 0;
  for (int i = 0; i < shards; ++i) {
    const checkpoint::OptimizerShard& shard = state.optimizer_shards(i);
    const std::string field = "optimizer_shards[" + std::to_string(i) + "]";
    const std::string expected = shard_file_name(i, shards);
    if (shard.file() != expected) {
      refuse(source, field + ".file", "is \"" + shard.file() + "\", not " + expected);
    }
    if (shard.begin() != covered || shard.end() < shard.begin() || shard.end() > size) {
      refuse(source, field,
             "[" + std::to_string(shard.begin()) + ", " + std::to_string(shard.end()) +
                 ") does not start where the shards before it end (" + std::to_string(covered) +
                 ") and end inside the parameter buffer of " + std::to_string(size) + " floats");
    }
    covered = shard.end();
  }
  if (covered != size) {
    refuse(source, "optimizer_shards",
           "cover [0, " + std::to_string(covered) + ") of the parameter buffer of " +
               std::to_string(size) + " floats, not all of it");
  }
}

// The file against its recorded size and CRC-32.
CheckedFile check_file(const fs::path& dir, const checkpoint::FileChecksum& record) {
  CheckedFile file;
  file.name = record.name();
  file.recorded_bytes = record.bytes();
  file.recorded_crc32 = record.crc32();
  std::error_code error;
  file.missing = !fs::exists(dir / file.name, error);
  std::string bytes;
  try {
    bytes = read_file(dir / file.name);
  } catch (const InputError& unreadable) {
    file.problem = unreadable.what();
    return file;
  }
  file.bytes = static_cast<int64_t>(bytes.size());
  file.crc32 = crc_of(bytes);
  if (file.bytes != file.recorded_bytes) {
    file.problem = "checkpoint " + dir.string() + ": " + file.name + " has " +
                   std::to_string(file.bytes) + " bytes, " + kStateFile + " says " +
                   std::to_string(file.recorded_bytes) + " (truncated?)";
  } else if (file.crc32 != file.recorded_crc32) {
    file.problem = "checkpoint " + dir.string() + ": " + file.name +
                   " fails its checksum (the file is damaged)";
  }
  return file;
}

// Every file has its recorded size and CRC-32.
void check_file_checksums(const fs::path& dir, const checkpoint::State& state) {
  for (const checkpoint::FileChecksum& record : state.files()) {
    const CheckedFile file = check_file(dir, record);
    if (!file.problem.empty()) throw InputError(file.problem);
  }
}

}  // namespace

Checkpoint open_checkpoint(const std::string& named, const config::Config& config) {
  Checkpoint checkpoint;
  const fs::path path = checkpoint_named_by(named);
  checkpoint.dir = path.string();
  const std::string& dir = checkpoint.dir;
  if (!fs::is_directory(path)) throw InputError("checkpoint " + dir + ": not a directory");
  const std::string source = (path / kStateFile).string();
  const std::string text = checked_state_text(source);
  parse_text_proto(text, source, &checkpoint.state);
  const checkpoint::State& state = checkpoint.state;
  check_recorded_config(state, config, source);
  check_position(state, source);
  check_file_names(state, source);
  check_optimizer_shards(state, source);
  check_file_checksums(path, state);
  if (!same_model(state.config(), config)) {
    throw InputError("checkpoint " + dir + " holds a different model (shapes or attention " +
                     "scheme) than the config: it was written for\n" +
                     config_to_text(state.config()));
  }
  return checkpoint;
}

namespace {

// Runs a check of a checkpoint, adding the problem it throws, if any, to `problems`. Returns
// whether it passed.
bool passes(const std::function<void()>& check, std::vector<std::string>& problems) {
  try {
    check();
    return true;
  } catch (const InputError& problem) {
    problems.push_back(problem.what());
    return false;
  }
}

// Reads state.pbtxt into the report. A file that fails its checksum is still parsed (the
// checksum line is a comment), so that a damaged checkpoint shows what it claims.
void read_state(const fs::path& file, CheckpointReport& report) {
  std::error_code error;
  if (!fs::exists(file, error)) {
    report.state_problems.push_back(file.string() + ": missing");
    return;
  }
  std::string text;
  report.sealed = passes([&] { text = checked_state_text(file); }, report.state_problems);
  if (!report.sealed && !passes([&] { text = read_file(file); }, report.state_problems)) return;
  checkpoint::State state;
  if (passes([&] { parse_text_proto(text, file.string(), &state); }, report.state_problems)) {
    report.state = std::move(state);
  }
}

}  // namespace

bool CheckpointReport::sound() const {
  const auto damaged = [](const CheckedFile& file) { return !file.problem.empty(); };
  return state.has_value() && state_problems.empty() && !files.empty() &&
         std::none_of(files.begin(), files.end(), damaged);
}

CheckpointReport check_checkpoint(const std::string& named) {
  CheckpointReport report;
  fs::path dir, latest;
  if (!passes([&] { dir = checkpoint_named_by(named, &latest); }, report.state_problems)) {
    return report;
  }
  report.dir = dir.string();
  report.latest = latest.string();
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    report.state_problems.push_back("checkpoint " + report.dir + ": not a directory");
    return report;
  }
  read_state(dir / kStateFile, report);
  if (!report.state) return report;
  const checkpoint::State& state = *report.state;
  const std::string source = (dir / kStateFile).string();
  std::vector<std::string>& problems = report.state_problems;
  // A default config stands in for the reader's: the settings that depend on the machine are
  // this build's defaults, so a checkpoint written on a GPU is checked on a CPU build.
  if (passes([&] { check_recorded_config(state, config::Config(), source); }, problems)) {
    passes([&] { check_optimizer_shards(state, source); }, problems);
  }
  passes([&] { check_position(state, source); }, problems);
  if (passes([&] { check_file_names(state, source); }, problems)) {
    for (const checkpoint::FileChecksum& record : state.files()) {
      report.files.push_back(check_file(dir, record));
    }
  }
  return report;
}

std::vector<std::string> list_checkpoints(const std::string& root) {
  std::vector<std::string> dirs;
  for (const fs::path& dir : checkpoint_dirs(root)) dirs.push_back(dir.string());
  return dirs;
}

void check_checkpoint_position(const Checkpoint& checkpoint, const config::Config& config,
                               int64_t steps_per_epoch) {
  const checkpoint::State& state = checkpoint.state;
  const bool same_epochs =
      state.config().train().global_batch_size() == config.train().global_batch_size() &&
      google::protobuf::util::MessageDifferencer::Equals(state.config().data(), config.data());
  if (!same_epochs || steps_per_epoch <= 0) return;
  if (state.epoch() != state.step() / steps_per_epoch ||
      state.batch_in_epoch() != state.step() % steps_per_epoch) {
    refuse((fs::path(checkpoint.dir) / kStateFile).string(), "step",
           "step " + std::to_string(state.step()) + ", epoch " + std::to_string(state.epoch()) +
               ", batch_in_epoch " + std::to_string(state.batch_in_epoch()) +
               " do not fit the data's " + std::to_string(steps_per_epoch) + " steps per epoch");
  }
}

std::optional<Checkpoint> find_checkpoint_to_resume(const std::string& out_dir,
                                                    const config::Config& config) {
  const fs::path root = fs::path(out_dir) / "checkpoints";
  std::vector<fs::path> candidates = checkpoint_dirs(root);
  // `latest` names the newest complete checkpoint; try it first.
  std::error_code error;
  if (fs::exists(root / "latest", error)) {
    const fs::path named = root / read_file(root / "latest");
    auto at = std::find(candidates.begin(), candidates.end(), named);
    if (at != candidates.end()) std::rotate(candidates.begin(), at, at + 1);
  }
  if (candidates.empty()) return std::nullopt;
  std::string problems;
  for (const fs::path& dir : candidates) {
    try {
      Checkpoint checkpoint = open_checkpoint(dir.string(), config);
      if (!problems.empty()) LOG(WARNING) << "Resuming from the older " << dir.string();
      return checkpoint;
    } catch (const InputError& problem) {
      LOG(WARNING) << "Cannot resume from " << dir.string() << ": " << problem.what()
                   << "; trying an older checkpoint";
      problems += (problems.empty() ? "" : "; ") + std::string(problem.what());
    }
  }
  throw InputError("--resume auto: no usable checkpoint under " + root.string() + ": " + problems);
}

namespace {

// AdamW takes one step per training step: its count is the checkpoint's step.
int64_t recorded_optimizer_steps(const SafetensorsFile& file, const checkpoint::State& state) {
  const std::vector<int64_t> steps = file.as_i64(kStepsTensor);
  if (steps.size() != 1 || steps[0] != state.step()) {
    refuse(file.path(), kStepsTensor,
           (steps.size() == 1 ? "is " + std::to_string(steps[0])
                              : "has " + std::to_string(steps.size()) + " values") +
               ", not the checkpoint's step " + std::to_string(state.step()));
  }
  return steps[0];
}

// AdamW's moments must be finite, and the second moment (a mean of squares) not negative: either
// would make the first update's weights NaN.
void check_moments(const std::vector<float>& first, const std::vector<float>& second,
                   const std::string& path, const std::string& name) {
  check_finite(first, path, kFirstMoment + name);
  check_finite(second, path, kSecondMoment + name);
  const auto negative = std::find_if(second.begin(), second.end(), [](float v) { return v < 0; });
  if (negative != second.end()) {
    throw InputError(path + ": tensor " + kSecondMoment + name + " has a negative value (" +
                     std::to_string(*negative) + " at element " +
                     std::to_string(negative - second.begin()) +
                     "), which a mean of squares "
                     "cannot have");
  }
}

// Whether an optimizer file holds a weight EMA: ema.X for the first parameter X.
bool has_weight_ema(const SafetensorsFile& file, const ParamLayout& layout) {
  return file.has(kEmaPrefix + layout.tensors().front().name);
}

// The weight EMA of an optimizer file (layout order): every ema.X of the parameter's size, finite.
std::vector<float> read_weight_ema(const SafetensorsFile& file, const ParamLayout& layout) {
  std::vector<float> average(layout.total_size(), 0.f);
  for (const TensorSlot& slot : layout.tensors()) {
    const std::string name = kEmaPrefix + slot.name;
    if (!file.has(name)) throw InputError(file.path() + ": missing tensor " + name);
    const std::vector<float> values = file.as_f32(name);
    if (static_cast<int64_t>(values.size()) != slot.size) {
      throw InputError(file.path() + ": tensor " + name + " has the wrong size");
    }
    check_finite(values, file.path(), name);
    std::copy(values.begin(), values.end(), average.begin() + slot.offset);
  }
  return average;
}

// The checkpoint's weight EMA; one written without an EMA starts it from the restored weights.
void restore_weight_ema(const SafetensorsFile& file, const VisionTransformer& model,
                        WeightEma& ema) {
  if (has_weight_ema(file, model.layout())) {
    ema.from_host(read_weight_ema(file, model.layout()));
    return;
  }
  LOG(WARNING) << file.path() << " holds no weight EMA (it was written with train.ema_decay 0): "
               << "the EMA starts from the checkpoint's weights";
  ema.from_host(model.params_to_host());
}

// AdamW's moments of [begin, end) of the flat buffer, gathered from a checkpoint's files.
struct MomentsOfRange {
  MomentsOfRange(int64_t range_begin, int64_t range_end)
      : begin(range_begin), first(range_end - range_begin), second(first.size()) {}

  // Copies the moments m and v of [values_begin, values_begin + m.size()) where they meet the
  // range.
  void fill(const std::vector<float>& m, const std::vector<float>& v, int64_t values_begin) {
    const int64_t end = begin + static_cast<int64_t>(first.size());
    const int64_t low = std::max(begin, values_begin);
    const int64_t high = std::min(end, values_begin + static_cast<int64_t>(m.size()));
    if (low >= high) return;
    std::copy(m.begin() + (low - values_begin), m.begin() + (high - values_begin),
              first.begin() + (low - begin));
    std::copy(v.begin() + (low - values_begin), v.begin() + (high - values_begin),
              second.begin() + (low - begin));
  }

  int64_t begin;
  std::vector<float> first, second;
};

// The moments exp_avg.NAME and exp_avg_sq.NAME of a file: `size` floats each, finite, the second
// not negative.
std::pair<std::vector<float>, std::vector<float>> read_moment_pair(const SafetensorsFile& file,
                                                                   const std::string& name,
                                                                   int64_t size) {
  std::vector<float> m = file.as_f32(kFirstMoment + name);
  std::vector<float> v = file.as_f32(kSecondMoment + name);
  if (static_cast<int64_t>(m.size()) != size || static_cast<int64_t>(v.size()) != size) {
    throw InputError(file.path() + ": the moments of " + name + " have the wrong size");
  }
  check_moments(m, v, file.path(), name);
  return {std::move(m), std::move(v)};
}

// From optimizer.safetensors, which holds every tensor's moments.
void read_moments(const SafetensorsFile& file, const ParamLayout& layout, MomentsOfRange& moments) {
  for (const TensorSlot& slot : layout.tensors()) {
    const auto [m, v] = read_moment_pair(file, slot.name, slot.size);
    moments.fill(m, v, slot.offset);
  }
}

// From the shard files (ZeRO-1) whose ranges meet the wanted one: the same number of ranks reads
// back exactly its own shard, another number the pieces of the shards its new range covers.
void read_sharded_moments(const Checkpoint& checkpoint, MomentsOfRange& moments) {
  const int64_t end = moments.begin + static_cast<int64_t>(moments.first.size());
  for (const checkpoint::OptimizerShard& shard : checkpoint.state.optimizer_shards()) {
    if (shard.end() <= moments.begin || shard.begin() >= end) continue;
    const SafetensorsFile file =
        SafetensorsFile::read((fs::path(checkpoint.dir) / shard.file()).string());
    recorded_optimizer_steps(file, checkpoint.state);
    const auto [m, v] = read_moment_pair(file, kShardMomentsName, shard.end() - shard.begin());
    moments.fill(m, v, shard.begin());
  }
}

}  // namespace

void load_checkpoint_model(const Checkpoint& checkpoint, VisionTransformer& model) {
  load_weights(model, (fs::path(checkpoint.dir) / kModelFile).string());
}

void load_checkpoint_ema(const Checkpoint& checkpoint, VisionTransformer& model) {
  load_checkpoint_model(checkpoint, model);
  const SafetensorsFile file =
      SafetensorsFile::read((fs::path(checkpoint.dir) / kOptimizerFile).string());
  if (!has_weight_ema(file, model.layout())) {
    throw InputError(file.path() + ": the checkpoint holds no weight EMA (ema.* tensors): it " +
                     "was written with train.ema_decay 0");
  }
  model.params_from_host(read_weight_ema(file, model.layout()));
}

void restore_checkpoint(const Checkpoint& checkpoint, VisionTransformer& model, AdamW& optimizer,
                        WeightEma* ema) {
  const fs::path dir(checkpoint.dir);
  load_checkpoint_model(checkpoint, model);
  const SafetensorsFile file = SafetensorsFile::read((dir / kOptimizerFile).string());
  if (ema) restore_weight_ema(file, model, *ema);
  MomentsOfRange moments(optimizer.shard_begin(), optimizer.shard_end());
  if (checkpoint.state.optimizer_shards().empty()) {
    read_moments(file, model.layout(), moments);
  } else {
    read_sharded_moments(checkpoint, moments);
  }
  optimizer.restore(moments.first, moments.second,
                    recorded_optimizer_steps(file, checkpoint.state));
}

}  // namespace dgqa
