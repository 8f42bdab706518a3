#include "trainer/datasets.h"

#include <filesystem>
#include <string>

#include "common/error.h"
#include "data/cifar_reader.h"
#include "data/encoded_source.h"
#include "data/idx_reader.h"
#include "data/image_folder.h"
#include "data/label_check.h"
#include "data/stored_source.h"
#include "data/tar_shards.h"

namespace dgqa {
namespace {

std::vector<float> values_of(const google::protobuf::RepeatedField<float>& field) {
  return {field.begin(), field.end()};
}

ImagePipelineOptions pipeline_options(const config::Config& config, const ModelConfig& model,
                                      bool train) {
  const config::Data& data = config.data();
  ImagePipelineOptions options;
  options.train = train;
  options.seed = config.seed();
  options.image_size = model.image_size;
  options.channels = model.in_channels;
  options.mean = values_of(data.mean());
  options.stddev = values_of(data.std());
  options.interpolation =
      data.interpolation() == config::BICUBIC ? Interpolation::kBicubic : Interpolation::kBilinear;
  options.random_resized_crop = data.random_resized_crop();
  if (data.random_resized_crop_scale_size() == 2) {
    options.crop_scale = {data.random_resized_crop_scale(0), data.random_resized_crop_scale(1)};
  }
  if (data.random_resized_crop_ratio_size() == 2) {
    options.crop_ratio = {data.random_resized_crop_ratio(0), data.random_resized_crop_ratio(1)};
  }
  options.hflip = data.hflip();
  options.rand_augment_num_ops = data.rand_augment_num_ops();
  options.rand_augment_magnitude = data.rand_augment_magnitude();
  options.rand_augment_num_bins = data.rand_augment_num_bins();
  const bool center_crop =
      data.eval_resize() == config::SHORTER_SIDE_CENTER_CROP ||
      (data.eval_resize() == config::EVAL_RESIZE_DEFAULT && is_encoded_format(data.format()));
  options.eval_resize = center_crop ? EvalResize::kShorterSideCenterCrop : EvalResize::kResize;
  options.crop_pct = data.crop_pct();
  options.jpeg_dct_scaling = data.jpeg_dct_scaling();
  return options;
}

std::string split_origin(const config::Data& data, bool train) {
  if (data.format() == config::IDX) {
    return train ? "data.train_images: " + data.train_images()
                 : "data.test_images: " + data.test_images();
  }
  return "data.root: " + data.root() + (train ? " (training split)" : " (test split)");
}

void check_store_labels(const EncodedStore& store, int num_classes) {
  for (int64_t i = 0; i < store.size(); ++i) {
    if (store.label(i) >= num_classes) {
      throw InputError(store.name(i) + ": label " + std::to_string(store.label(i)) +
                       " does not fit model.num_classes = " + std::to_string(num_classes));
    }
  }
}

}  // namespace

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
      throw InputError("data.format: " + config::DataFormat_Name(data.format()) +
                       " is not a stored format");
  }
  const std::string source = split_origin(data, train);
  if (dataset.num_examples == 0) throw InputError(source + ": holds no images");
  if (dataset.channels != model.in_channels) {
    throw InputError(source + ": the images have " + std::to_string(dataset.channels) +
                     " channels but model.in_channels is " + std::to_string(model.in_channels));
  }
  check_labels_fit(dataset, model.num_classes);
  return dataset;
}

std::unique_ptr<EncodedStore> open_encoded_store(const config::Config& config,
                                                 const ModelConfig& model, bool train) {
  const config::Data& data = config.data();
  std::unique_ptr<EncodedStore> store;
  switch (data.format()) {
    case config::IMAGE_FOLDER: {
      // The classes are the training split's folders, for both splits; an evaluation of a
      // folder that has no training split numbers its own.
      const std::string train_dir = data.root() + "/" + data.train_split();
      const std::string val_dir = data.root() + "/" + data.val_split();
      if (!train && !std::filesystem::exists(train_dir)) {
        store = file_list_store(list_image_folder(val_dir));
        break;
      }
      const ImageFileList train_list = list_image_folder(train_dir);
      store = file_list_store(train ? train_list : list_image_folder(val_dir, &train_list.classes));
      break;
    }
    case config::FOOD101:
      store = file_list_store(list_food101(data.root(), train));
      break;
    case config::TINY_IMAGENET:
      store = file_list_store(list_tiny_imagenet(data.root(), train));
      break;
    case config::TAR_SHARDS:
      store = open_tar_shards(
          train ? expand_shard_list(data.train_shards(), data.root(), "data.train_shards")
                : expand_shard_list(data.val_shards(), data.root(), "data.val_shards"));
      break;
    default:
      throw InputError("data.format: " + config::DataFormat_Name(data.format()) +
                       " is not a JPEG/PNG format");
  }
  check_store_labels(*store, model.num_classes);
  return store;
}

std::unique_ptr<ExampleSource> open_split(const config::Config& config, const ModelConfig& model,
                                          bool train) {
  const config::Data& data = config.data();
  if (is_encoded_format(data.format())) {
    const BadImagePolicy policy =
        data.bad_image() == config::SKIP ? BadImagePolicy::kSkip : BadImagePolicy::kFail;
    return std::make_unique<EncodedImageSource>(open_encoded_store(config, model, train),
                                                pipeline_options(config, model, train), policy);
  }
  StoredSourceOptions options;
  options.train = train;
  options.seed = config.seed();
  options.transform.image_size = model.image_size;
  options.transform.mean = values_of(data.mean());
  options.transform.stddev = values_of(data.std());
  if (train) {
    options.augment.crop_padding = data.random_crop_padding();
    options.augment.hflip = data.hflip();
  }
  if (uses_image_pipeline(data)) options.pipeline = pipeline_options(config, model, train);
  return std::make_unique<StoredImageSource>(load_dataset(config, model, train), options);
}

LoaderOptions loader_options(const config::Config& config, bool train, int rank, int world_size) {
  LoaderOptions options;
  options.sampler.train = train;
  options.sampler.seed = config.seed();
  options.sampler.global_batch_size =
      train ? config.train().global_batch_size() : config.train().eval_batch_size();
  options.sampler.batch_size_field = train ? "train.global_batch_size" : "train.eval_batch_size";
  options.sampler.rank = rank;
  options.sampler.world_size = world_size;
  options.prefetch_batches = config.data().prefetch_batches();
  options.workers = config.data().workers();
  return options;
}

}  // namespace dgqa
