// Reads the binary versions of CIFAR-10 and CIFAR-100 from the directory named by data.root.
#pragma once

#include <string>

#include "data/dataset.h"

namespace dgqa {

// CIFAR-10: data_batch_1.bin .. data_batch_5.bin (train) or test_batch.bin (test) under root;
// each record is 1 label byte followed by 3x32x32 pixel bytes (CHW).
Dataset read_cifar10_dataset(const std::string& root, bool train);

// CIFAR-100: train.bin or test.bin under root; each record is a coarse label byte, a fine
// label byte and 3x32x32 pixel bytes. The dataset keeps the fine labels (100 classes).
Dataset read_cifar100_dataset(const std::string& root, bool train);

// Both throw InputError naming data.root and the file for a missing or unreadable file, a
// size that is not a whole number of records, or a label outside the dataset's classes.

}  // namespace dgqa
