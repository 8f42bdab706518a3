// Fuzz target: opening a checkpoint (trainer/checkpoint.h), its state.pbtxt above all.
//
// Input: the text of state.pbtxt. It is opened twice with open_checkpoint, as `dgqa train
// --resume DIR` opens it, from a scratch checkpoint directory whose model.safetensors and
// optimizer.safetensors hold the fixed bytes of checkpoint_inputs.h: once as it is, and once
// with a correct `# crc32:` line appended, so that inputs get past the checksum to the parser
// and the checks of the recorded config, position and files. The current config is
// kCheckpointRunConfig. An opened checkpoint is also checked against a few steps per epoch
// (check_checkpoint_position).
// Asserts: each open and check ends normally or with an InputError naming the checkpoint
// directory.
#include <google/protobuf/text_format.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "tests/fuzz/checkpoint_inputs.h"
#include "tests/fuzz/fuzz_support.h"
#include "trainer/checkpoint.h"

namespace dgqa::fuzz {
namespace {

const config::Config& run_config() {
  static const config::Config config = [] {
    config::Config parsed;
    if (!google::protobuf::TextFormat::ParseFromString(kCheckpointRunConfig, &parsed)) {
      finding("kCheckpointRunConfig does not parse");
    }
    return parsed;
  }();
  return config;
}

// The checkpoint directory, with its two data files.
const std::string& checkpoint_dir() {
  static const std::string dir = [] {
    const std::string made = scratch_dir() + "/checkpoint";
    std::filesystem::create_directory(made);
    write_scratch_file("checkpoint/model.safetensors", kModelFileBytes);
    write_scratch_file("checkpoint/optimizer.safetensors", kOptimizerFileBytes);
    return made;
  }();
  return dir;
}

void open_and_check(const std::string& state_text) {
  const std::string& dir = checkpoint_dir();
  write_scratch_file("checkpoint/state.pbtxt", state_text);
  reads_or_refuses(dir, [&] {
    const Checkpoint checkpoint = open_checkpoint(dir, run_config());
    for (int64_t steps_per_epoch : {1, 3, 1000}) {
      reads_or_refuses(
          dir, [&] { check_checkpoint_position(checkpoint, run_config(), steps_per_epoch); });
    }
  });
}

}  // namespace
}  // namespace dgqa::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dgqa::fuzz;
  const std::string text(reinterpret_cast<const char*>(data), size);
  open_and_check(text);
  open_and_check(sealed_state_text(text));
  return 0;
}
