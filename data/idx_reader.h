// Reads (Fashion-)MNIST datasets stored as a pair of IDX files, gzipped or not.
#pragma once

#include <string>

#include "data/dataset.h"

namespace dgqa {

// Reads an IDX image file (magic 0x00000803, dims N x rows x cols, one uint8 channel) and
// the matching IDX label file (magic 0x00000801, dim N). The field names ("data.train_images",
// "data.train_labels") start every error message, followed by the path. Throws InputError for
// a missing or unreadable file, a wrong magic number, a truncated file, or image and label
// counts that differ.
Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         const std::string& images_field, const std::string& labels_field);

}  // namespace dgqa
