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

// Expands a shard list: whitespace-separated patterns, each with brace groups as
// WebDataset's braceexpand reads them: {000..127} (a numeric range, zero-padded to the width
// of its bounds) and {a,b,c}. Relative paths are taken under `root` (unless it is empty).
// Throws InputError naming `field` for a malformed pattern or a list of more than 10^5 shards
// or 16 MiB of paths.
std::vector<std::string> expand_shard_list(const std::string& patterns, const std::string& root,
                                           const std::string& field);

// Indexes `shards` by reading each one's member headers from start to end (and the .cls
// members), once; the samples are then read by position from the open shard files. The
// dataset order is the shards' order, then the samples' order within a shard. Throws
// InputError naming the shard (and member) at fault: unreadable or truncated, not a tar, a
// sample without an image or a .cls, an unparsable or negative label, a symlink member.
std::unique_ptr<EncodedStore> open_tar_shards(const std::vector<std::string>& shards);

}  // namespace dgqa
