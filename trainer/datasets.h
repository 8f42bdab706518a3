// Opens the datasets a config names and checks that they fit the model.
#pragma once

#include "data/dataset.h"
#include "data/loader.h"
#include "model/model_config.h"
#include "trainer/config.h"

namespace dgqa {

// The training (train = true) or test split of config.data. Throws InputError naming the
// field or file at fault: unreadable files, labels >= model.num_classes, or images whose
// channel count is not model.in_channels.
Dataset load_dataset(const config::Config& config, const ModelConfig& model, bool train);

// Loader options for `dataset` on this rank: training shuffles and augments; evaluation does
// neither and keeps a partial last batch.
LoaderOptions loader_options(const config::Config& config, const ModelConfig& model, bool train,
                             int rank, int world_size);

}  // namespace dgqa
