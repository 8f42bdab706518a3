// The `dgqa` commands, each called by main() with a parsed command line.
#pragma once

#include "trainer/cli.h"

namespace dgqa {

void train_command(const CommandLine& line);

// Prints one JSON line {"loss", "top1", "examples"} on stdout.
void eval_command(const CommandLine& line);

}  // namespace dgqa
