// The transforms of encoded and stored images, named and ordered as torchvision and timm
// name and order them (docs/design.md §5.10), from an 8-bit image to the model's float input:
//   training:   RandomResizedCrop(S) -> horizontal flip -> RandAugment, or, without the
//               random crop, RandAugment -> horizontal flip -> Resize((S, S)) (the paper's
//               order: augment at the stored size, then resize);
//   evaluation: Resize(floor(S / crop_pct)) of the shorter side -> CenterCrop(S), or
//               Resize((S, S));
//   then ToTensor (pixel / 255) and Normalize(mean, std).
// Every random choice of an example comes from the stream keyed by (seed, epoch, example).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/resample.h"

namespace dgqa {

enum class EvalResize { kShorterSideCenterCrop, kResize };

struct ImagePipelineOptions {
  bool train = false;
  uint64_t seed = 0;
  int image_size = 0;               // S, the side of the square output (model.image_size)
  int channels = 3;                 // 3: RGB as PIL's convert("RGB"); 1: convert("L")
  std::vector<float> mean, stddev;  // data.mean, data.std: 0, 1 or `channels` values
  Interpolation interpolation = Interpolation::kBilinear;
  // Training.
  bool random_resized_crop = false;
  std::array<double, 2> crop_scale{0.08, 1.0};             // area fraction range
  std::array<double, 2> crop_ratio{3.0 / 4.0, 4.0 / 3.0};  // aspect ratio range
  bool hflip = false;
  int rand_augment_num_ops = 0;  // 0 = no RandAugment
  int rand_augment_magnitude = 9;
  int rand_augment_num_bins = 31;
  // Evaluation.
  EvalResize eval_resize = EvalResize::kShorterSideCenterCrop;
  double crop_pct = 0.875;
  // Training: shrink JPEGs in the DCT domain while decoding when the resize target is at most
  // half the stored size (data.jpeg_dct_scaling). Evaluation always decodes whole, so that its
  // inputs match torchvision's on PIL images.
  bool jpeg_dct_scaling = true;
};

class ImagePipeline {
 public:
  // Throws InputError naming the data.* field of an option out of range.
  explicit ImagePipeline(const ImagePipelineOptions& options);

  int64_t output_floats() const {
    return int64_t{options_.channels} * options_.image_size * options_.image_size;
  }

  // Decodes `bytes` (a JPEG or PNG file named `name` in errors) and writes the model input of
  // example `example` in `epoch` to `out` (output_floats() floats, CHW). Throws InputError
  // naming `name` when the image cannot be decoded.
  void apply_encoded(const uint8_t* bytes, size_t size, const std::string& name, int64_t epoch,
                     int64_t example, float* out) const;

  // The same for an image already in memory (channels must match options.channels).
  void apply_decoded(const Image& image, int64_t epoch, int64_t example, float* out) const;

 private:
  struct Plan;  // the geometry and random choices for one example
  Plan plan(int width, int height, int64_t epoch, int64_t example, bool can_reduce) const;
  void plan_evaluation(Plan* plan) const;
  static void shrink_region(int f, Plan* plan);
  Image transform(Image source, const Plan& plan) const;
  void to_model_input(const Image& image, float* out) const;

  ImagePipelineOptions options_;
  std::vector<float> mean_, stddev_;  // one value per channel
};

}  // namespace dgqa
