// Opens the datasets a config names, checks that they fit the model, and sets up how the
// loader reads them.
#pragma once

#include <memory>

#include "data/dataset.h"
#include "data/encoded_store.h"
#include "data/example_source.h"
#include "data/loader.h"
#include "model/model_config.h"
#include "trainer/config.h"

namespace dgqa {

// The training (train = true) or evaluation split of config.data, ready for a BatchLoader:
// training splits augment as config.data asks, evaluation splits do not. Throws InputError
// naming the field or file at fault: unreadable files, labels >= model.num_classes, images
// whose channel count is not model.in_channels.
std::unique_ptr<ExampleSource> open_split(const config::Config& config, const ModelConfig& model,
                                          bool train);

// The images of a stored format (IDX, CIFAR) as its files hold them, labels checked.
Dataset load_dataset(const config::Config& config, const ModelConfig& model, bool train);

// The files of an encoded format (IMAGE_FOLDER, FOOD101, TINY_IMAGENET, TAR_SHARDS), labels
// checked against model.num_classes.
std::unique_ptr<EncodedStore> open_encoded_store(const config::Config& config,
                                                 const ModelConfig& model, bool train);

// Loader options for this rank: training shuffles; evaluation keeps the dataset order and a
// partial last batch.
LoaderOptions loader_options(const config::Config& config, bool train, int rank, int world_size);

}  // namespace dgqa
