// Datasets in tar shards, the WebDataset convention (docs/design.md §5.10): a shard is a tar
// file whose members that share a key (the member name up to the first dot of its base name)
// form one sample, here an image (<key>.jpg, .jpeg or .png) and its class index (<key>.cls,
// decimal text). Other members (.json, .txt, ...) are ignored.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/encoded_store.h"

namespace dgqa {

// The largest shard list expand_shard_list builds: a larger one is refused before it is built,
// so that a typo such as {0..999999999} costs nothing. Every shard stays open for the whole
// run, so the open-file limit bounds a usable list far below the default anyway.
struct ShardListLimits {
  int64_t max_shards = 100000;
  int64_t max_path_bytes = 16 << 20;
};

// Expands a shard list: whitespace-separated patterns, each with brace groups as
// WebDataset's braceexpand reads them: {000..127} (a numeric range, zero-padded to the width
// of its bounds) and {a,b,c}. Relative paths are taken under `root` (unless it is empty).
// Throws InputError naming `field` for a malformed pattern or a list beyond `limits`.
std::vector<std::string> expand_shard_list(const std::string& patterns, const std::string& root,
                                           const std::string& field,
                                           const ShardListLimits& limits = {});

// Indexes `shards` by reading each one's member headers from start to end (and the .cls
// members), once; the samples are then read by position from the open shard files. The
// dataset order is the shards' order, then the samples' order within a shard. Throws
// InputError naming the shard (and member) at fault: unreadable or truncated, not a tar, a
// sample without an image or a .cls, an unparsable or negative label, a symlink member.
std::unique_ptr<EncodedStore> open_tar_shards(const std::vector<std::string>& shards);

}  // namespace dgqa
