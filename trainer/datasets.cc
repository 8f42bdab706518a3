#include "trainer/datasets.h"

#include "common/error.h"
#include "data/cifar_reader.h"
#include "data/idx_reader.h"
#include "data/label_check.h"

namespace dgqa {

Dataset load_dataset(const config::Config& config, const ModelConfig& model, bool train) {
  const config::Data& data = config.data();
  Dataset dataset;
  switch (data.format()) {
    case config::IDX:
      dataset = train ? read_idx_dataset(data.train_images(), data.train_labels(),
                                         "data.train_images", "data.train_labels")
                      : read_idx_dataset(data.test_images(), data.test_labels(), "data.test_images",
                                         "data.test_labels");
      break;
    case config::CIFAR10:
      dataset = read_cifar10_dataset(data.root(), train);
      break;
    case config::CIFAR100:
      dataset = read_cifar100_dataset(data.root(), train);
      break;
    default:
      throw InputError("data.format: unsupported format " + std::to_string(data.format()));
  }
  // The images' origin, as error messages name it.
  const std::string source =
      data.format() == config::IDX
          ? (train ? "data.train_images: " + data.train_images()
                   : "data.test_images: " + data.test_images())
          : "data.root: " + data.root() + (train ? " (training split)" : " (test split)");
  if (dataset.num_examples == 0) throw InputError(source + ": holds no images");
  if (dataset.channels != model.in_channels) {
    throw InputError(source + ": the images have " + std::to_string(dataset.channels) +
                     " channels but model.in_channels is " + std::to_string(model.in_channels));
  }
  check_labels_fit(dataset, model.num_classes);
  return dataset;
}

LoaderOptions loader_options(const config::Config& config, const ModelConfig& model, bool train,
                             int rank, int world_size) {
  LoaderOptions options;
  options.sampler.train = train;
  options.sampler.seed = config.seed();
  options.sampler.global_batch_size =
      train ? config.train().global_batch_size() : config.train().eval_batch_size();
  options.sampler.batch_size_field = train ? "train.global_batch_size" : "train.eval_batch_size";
  options.sampler.rank = rank;
  options.sampler.world_size = world_size;
  options.transform.image_size = model.image_size;
  options.transform.mean.assign(config.data().mean().begin(), config.data().mean().end());
  options.transform.stddev.assign(config.data().std().begin(), config.data().std().end());
  if (train) {
    options.augment.crop_padding = config.data().random_crop_padding();
    options.augment.hflip = config.data().hflip();
  }
  options.prefetch_batches = config.data().prefetch_batches();
  return options;
}

}  // namespace dgqa
