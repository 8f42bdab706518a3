// `dgqa dump-data` and `dgqa pack`: the data pipeline's output made visible, and any dataset
// rewritten in the JPEG/PNG formats (docs/design.md §5.10, §7).
#pragma once

#include "cli/command_line.h"
#include "comm/communicator.h"
#include "trainer/config.h"

namespace dgqa {

// Writes the first --count examples of --split in dataset order exactly as the model receives
// them (float32 N x C x S x S, normalised; a training split as epoch 0 draws its
// augmentation) to --out as .npy; with --labels-out their labels (int64), with --grid a PNG
// contact sheet of them un-normalised. Rank 0 writes.
void dump_data_command(const CommandLine& line, const config::Config& config, Communicator& comm);

// Writes the training and evaluation splits of the config's dataset under --out as an image
// folder (--as folder: <split>/<class>/<index>.<ext>) or as tar shards (--as shards:
// <split>-NNNNNN.tar with <index>.<ext> and <index>.cls members), then prints the settings
// that train on the result. Stored images become PNG; encoded ones keep their bytes. Class
// folders are the labels zero-padded to one width, so their sorted order is the label order.
void pack_command(const CommandLine& line, const config::Config& config, Communicator& comm);

}  // namespace dgqa
