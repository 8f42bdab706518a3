// The dgqa program: parses the command line and runs a command (design.md section 7).
// Bad input of any kind ends it with exit code 2 and one message naming the thing at fault.
#include <glog/logging.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/error.h"
#include "trainer/cli.h"
#include "trainer/commands.h"

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    const dgqa::CommandLine line = dgqa::parse_command_line(args);
    if (line.command == "help") {
      std::printf("%s", dgqa::usage_text().c_str());
    } else if (line.command == "train") {
      dgqa::train_command(line);
    } else {
      dgqa::eval_command(line);
    }
  } catch (const dgqa::InputError& error) {
    std::fprintf(stderr, "dgqa: error: %s\n", error.what());
    return dgqa::kExitInputError;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "dgqa: failed: %s\n", error.what());
    return dgqa::kExitFailure;
  }
  return dgqa::kExitOk;
}
