// Fuzz target: the config loader (trainer/config.h), file and `--set` overrides together.
//
// Input: the text of a config file, then, after each NUL byte, one `--set` argument
// (`field.path=value`): "model { depth: 2 }\0optimizer.lr=3e-4\0data.mean=0.5,0.5". The text
// is written to a scratch file and loaded with load_config(path, overrides), as `dgqa train
// --config path --set ...` loads it.
// Asserts: the load ends with a config or an InputError naming the file or `--set`; a loaded
// config prints as text that parses back to a config printing the same, passes
// validate_config again (a checkpoint records and re-reads its config this way) and resolves
// to a model shape.
#include <google/protobuf/text_format.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_support.h"
#include "trainer/config.h"

namespace dgqa::fuzz {
namespace {

// The parts of the input: the file's text and the overrides.
std::vector<std::string> split_at_nul(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\0') {
      parts.emplace_back();
    } else {
      parts.back() += static_cast<char>(data[i]);
    }
  }
  return parts;
}

void check_round_trip(const config::Config& loaded) {
  const std::string text = config_to_text(loaded);
  config::Config reread;
  if (!google::protobuf::TextFormat::ParseFromString(text, &reread)) {
    finding("config_to_text wrote a config that does not parse:\n" + text);
  }
  if (config_to_text(reread) != text) finding("the config changed on a round trip:\n" + text);
  try {
    validate_config(reread, "round trip");
    model_config_from(reread);
  } catch (const InputError& error) {
    finding(std::string("a loaded config fails validation after a round trip: ") + error.what());
  }
}

}  // namespace
}  // namespace dgqa::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dgqa::fuzz;
  std::vector<std::string> parts = split_at_nul(data, size);
  const std::string path = write_scratch_file("config.pbtxt", parts.front());
  parts.erase(parts.begin());
  reads_or_refuses({path, "--set"}, [&] { check_round_trip(dgqa::load_config(path, parts)); });
  return 0;
}
