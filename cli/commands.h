// The `dgqa` commands, each called by main() with a parsed command line and the job's
// communicator (a single process, or one rank of an MPI job).
#pragma once

#include "cli/command_line.h"
#include "comm/communicator.h"
#include "trainer/config.h"

namespace dgqa {

void train_command(const CommandLine& line, const config::Config& config, Communicator& comm);

// Rank 0 prints one JSON line {"loss", "top1", "top5", "examples"} on stdout.
void eval_command(const CommandLine& line, const config::Config& config, Communicator& comm);

// Checks, before any work, that the file `path` given with `flag` can be written: its directory
// exists and it is not itself a directory. Throws InputError naming both otherwise.
void check_output_file(const std::string& flag, const std::string& path);

// Converts a timm MHA checkpoint to this config's scheme and K/V heads (docs/design.md §3.5).
void convert_command(const CommandLine& line, const config::Config& config);

// Describes what line.path holds: a checkpoint, a run directory or a weights (or optimizer)
// file, as a text report or, with --json, one JSON object on stdout (docs/design.md §7.5).
// Returns kExitOk when everything checked holds, kExitDamaged when something is damaged (each
// problem is in the report, the first also on stderr); throws InputError, naming the path, when
// it is none of these things.
int inspect_command(const CommandLine& line);

}  // namespace dgqa
