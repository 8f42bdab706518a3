// Checkpoints: OUT/checkpoints/step_NNNNNNNN/{model,optimizer}.safetensors + state.pbtxt, with
// OUT/checkpoints/latest naming the newest complete one (docs/design.md §6). Under ZeRO-1 each
// rank adds the file of its shard of AdamW's moments, and state.pbtxt lists the shards.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "model/vit.h"
#include "trainer/checkpoint.pb.h"
#include "trainer/config.h"
#include "trainer/optimizer.h"
#include "trainer/weight_ema.h"

namespace dgqa {

// Where training stands between two steps.
struct TrainingPosition {
  int64_t step = 0;            // optimizer steps done
  int64_t epoch = 0;           // epoch of the next step
  int64_t batch_in_epoch = 0;  // global batch of that epoch the next step takes
  // Since the last log step, over all ranks: images trained, those classified right (top-1),
  // unreadable ones replaced (checkpoint.proto, State.log_window_*).
  int64_t log_window_images = 0, log_window_correct = 0, log_window_bad_images = 0;
};

// Writes a checkpoint of the state after `position.step` steps; collective: every rank calls it.
// The files go to a temporary directory (made by rank 0; out_dir must be the same directory for
// every rank, as on a cluster's shared file system), are fsync'd, and rank 0 renames the
// directory into place; `latest` is updated last, and only then are checkpoints beyond
// `keep_last` removed. An optimizer that holds a shard (ZeRO-1) writes its moments into a shard
// file of its own, whose size and CRC-32 rank 0 records. A failed write (disk full,
// permissions) throws std::runtime_error on every rank and leaves earlier checkpoints intact.
// Returns the checkpoint's directory. A weight EMA (null: none) goes into the optimizer file.
std::string write_checkpoint(const std::string& out_dir, const VisionTransformer& model,
                             const AdamW& optimizer, const WeightEma* ema,
                             const TrainingPosition& position, const config::Config& config,
                             Communicator& comm, int keep_last);

// The position a checkpoint's state records (written there by write_checkpoint).
TrainingPosition position_of(const checkpoint::State& state);

struct Checkpoint {
  std::string dir;
  checkpoint::State state;
};

// Reads and checks a checkpoint directory: state.pbtxt passes its checksum and parses, its
// config passes validate_config, its step, epoch and batch_in_epoch fit that config, it names
// the two data files by their plain names (and, written under ZeRO-1, its shard files, whose
// ranges cover the parameter buffer exactly), every file has its recorded size and checksum, and
// the checkpoint's model has this config's shapes and scheme. Throws InputError naming the file
// (and field) at fault. `named` is the checkpoint's directory, or the file
// OUT/checkpoints/latest, OUT/checkpoints or OUT: then the checkpoint `latest` names.
Checkpoint open_checkpoint(const std::string& named, const config::Config& config);

// One data file of a checkpoint, measured against what state.pbtxt records of it.
struct CheckedFile {
  std::string name;  // as recorded
  int64_t recorded_bytes = 0;
  uint32_t recorded_crc32 = 0;
  bool missing = false;
  int64_t bytes = -1;   // its size; -1 when it cannot be read
  uint32_t crc32 = 0;   // of its bytes, when they could be read
  std::string problem;  // the message open_checkpoint gives; "": the size and CRC-32 hold
};

// A checkpoint examined without a run's config (dgqa inspect): the checks of open_checkpoint,
// with the checkpoint's own recorded config standing in for the run's, and every problem
// collected instead of the first one thrown, so that whatever can be read is still shown.
struct CheckpointReport {
  std::string dir;                          // the checkpoint directory the name leads to
  std::string latest;                       // the `latest` file that named it, if one did
  std::optional<checkpoint::State> state;   // state.pbtxt, when it parses (checksum or not)
  bool sealed = false;                      // state.pbtxt's checksum line holds
  std::vector<std::string> state_problems;  // state.pbtxt's: missing, checksum, syntax, contents
  std::vector<CheckedFile> files;           // the data files it lists, when their names are sound

  bool sound() const;
};

// Never throws for a damaged checkpoint; `named` as for open_checkpoint.
CheckpointReport check_checkpoint(const std::string& named);

// The checkpoint directories (step_NNNNNNNN) in `root`, OUT/checkpoints, newest (by name) first.
std::vector<std::string> list_checkpoints(const std::string& root);

// Checks that the checkpoint's epoch and batch_in_epoch are those of its step at this run's
// steps_per_epoch, when it was written for the same data and global batch size (otherwise its
// epochs had another length). Throws InputError naming state.pbtxt.
void check_checkpoint_position(const Checkpoint& checkpoint, const config::Config& config,
                               int64_t steps_per_epoch);

// --resume auto: the newest good checkpoint under out_dir/checkpoints, trying older ones (and
// saying so) when a newer one is damaged. None at all: nullopt (a fresh start). Some, but none
// good: InputError.
std::optional<Checkpoint> find_checkpoint_to_resume(const std::string& out_dir,
                                                    const config::Config& config);

// Loads the checkpoint's weights and DGQA state (dgqa eval --checkpoint).
void load_checkpoint_model(const Checkpoint& checkpoint, VisionTransformer& model);

// The checkpoint's weight EMA in place of its weights, with its DGQA state (dgqa eval --ema);
// InputError when it holds none.
void load_checkpoint_ema(const Checkpoint& checkpoint, VisionTransformer& model);

// Loads the checkpoint's weights, DGQA state and optimizer state, and its weight EMA into `ema`
// when not null (a checkpoint without one starts it from the weights, with a warning);
// InputError when the optimizer's step count is not the checkpoint's step. The optimizer gets the
// moments of its shard, from whichever files hold them: a checkpoint written by any number of
// ranks, with or without ZeRO-1, restores an optimizer with or without it.
void restore_checkpoint(const Checkpoint& checkpoint, VisionTransformer& model, AdamW& optimizer,
                        WeightEma* ema);

}  // namespace dgqa
