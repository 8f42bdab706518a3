// The fixed parts of the checkpoint that fuzz_checkpoint opens, shared with the seed generator
// (make_seeds.cc), whose state.pbtxt seeds record them.
#pragma once

#include <zlib.h>

#include <cstdio>
#include <string>

namespace dgqa::fuzz {

// The config of the run that opens the checkpoint (`dgqa train --config ... --resume DIR`):
// a tiny model, whose shapes and scheme the checkpoint's recorded config must have.
inline constexpr char kCheckpointRunConfig[] = R"(model {
  image_size: 8
  patch_size: 4
  in_channels: 1
  num_classes: 3
  embed_dim: 8
  depth: 1
  num_heads: 2
  attention: KDGQA
}
data {
  format: IDX
  train_images: "train-images"
  train_labels: "train-labels"
  test_images: "test-images"
  test_labels: "test-labels"
}
train {
  global_batch_size: 4
  max_steps: 10
}
)";

// The contents of the checkpoint's two data files: state.pbtxt names them with their sizes and
// CRC-32s, which are all open_checkpoint reads of them.
inline constexpr char kModelFileBytes[] = "model weights";
inline constexpr char kOptimizerFileBytes[] = "optimizer moments";

// `text` with the checksum line that ends a written state.pbtxt (docs/design.md §6.2): the
// CRC-32 of the text before it, after a newline ending the text.
inline std::string sealed_state_text(std::string text) {
  if (!text.empty() && text.back() != '\n') text += '\n';
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(text.data()),
                          static_cast<uInt>(text.size()));
  char line[32];
  std::snprintf(line, sizeof(line), "# crc32: %08lx\n", crc);
  return text + line;
}

}  // namespace dgqa::fuzz
