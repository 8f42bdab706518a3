#include "data/image_pipeline.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/error.h"
#include "common/simd.h"
#include "data/crop_geometry.h"
#include "data/image_decode.h"
#include "data/rand_augment.h"
#include "data/random_streams.h"
#include "data/transforms.h"

namespace dgqa {
namespace {

void check_option(bool ok, const std::string& message) {
  if (!ok) throw InputError(message);
}

void check_range_pair(const std::array<double, 2>& range, const char* field) {
  check_option(range[0] > 0 && range[0] <= range[1],
               std::string(field) + ": [" + std::to_string(range[0]) + ", " +
                   std::to_string(range[1]) + "] must be positive and in increasing order");
}

}  // namespace

// Everything decided about one example before its pixels are touched.
struct ImagePipeline::Plan {
  CropRect region;             // of the stored image: what is decoded (or cut from a stored image)
  int reduction = 1;           // the JPEG DCT-domain shrink factor
  Box box{};                   // the part of the decoded region that is resized
  Size2 resize_to{};           // the size of the resize
  bool augment_first = false;  // RandAugment and flip before the resize (no random crop)
  bool flip = false;
  std::vector<AugmentOpDraw> ops;
  bool center_crop = false;  // evaluation: cut an S x S square out of the resized image
  CropRect crop{};
  Size2 source{};  // the stored size
};

ImagePipeline::ImagePipeline(const ImagePipelineOptions& options) : options_(options) {
  check_option(options.image_size > 0,
               "model.image_size: " + std::to_string(options.image_size) + " must be positive");
  check_option(options.channels == 1 || options.channels == 3,
               "model.in_channels: " + std::to_string(options.channels) +
                   " (JPEG and PNG images become 1 (L) or 3 (RGB) channels)");
  check_range_pair(options.crop_scale, "data.random_resized_crop_scale");
  check_option(options.crop_scale[1] <= 1,
               "data.random_resized_crop_scale: the largest area "
               "fraction must be at most 1");
  check_range_pair(options.crop_ratio, "data.random_resized_crop_ratio");
  check_option(options.crop_pct > 0 && options.crop_pct <= 1,
               "data.crop_pct: " + std::to_string(options.crop_pct) + " must be in (0, 1]");
  check_option(options.rand_augment_num_ops >= 0,
               "data.rand_augment_num_ops: " + std::to_string(options.rand_augment_num_ops) +
                   " must not be negative");
  check_option(options.rand_augment_num_bins >= 2,
               "data.rand_augment_num_bins: " + std::to_string(options.rand_augment_num_bins) +
                   " must be at least 2");
  check_option(options.rand_augment_magnitude >= 0 &&
                   options.rand_augment_magnitude < options.rand_augment_num_bins,
               "data.rand_augment_magnitude: " + std::to_string(options.rand_augment_magnitude) +
                   " must be in [0, data.rand_augment_num_bins)");
  mean_ = per_channel_values(options.mean, 0.f, options.channels, "data.mean");
  stddev_ = stddev_values(options.stddev, options.channels);
}

ImagePipeline::Plan ImagePipeline::plan(int width, int height, int64_t epoch, int64_t example,
                                        bool can_reduce) const {
  const int S = options_.image_size;
  Plan plan;
  plan.source = {width, height};
  plan.region = {0, 0, height, width};
  plan.resize_to = {S, S};
  if (!options_.train) {
    plan_evaluation(&plan);
    return plan;
  }
  UniformStream stream(options_.seed, epoch, example, kImageAugmentStreamTag);
  if (options_.random_resized_crop) {
    plan.region =
        random_resized_crop_rect(width, height, options_.crop_scale[0], options_.crop_scale[1],
                                 options_.crop_ratio[0], options_.crop_ratio[1], &stream);
  } else {
    plan.augment_first = true;
  }
  shrink_region(can_reduce && options_.jpeg_dct_scaling
                    ? jpeg_reduction_for(plan.region.width, plan.region.height, S, S)
                    : 1,
                &plan);
  plan.flip = options_.hflip && stream.uniform() < 0.5f;
  if (options_.rand_augment_num_ops > 0) {
    const int augmented_width = plan.augment_first ? plan.region.width : S;
    const int augmented_height = plan.augment_first ? plan.region.height : S;
    plan.ops = draw_rand_augment(options_.rand_augment_num_ops, options_.rand_augment_magnitude,
                                 options_.rand_augment_num_bins, augmented_width, augmented_height,
                                 &stream);
  }
  return plan;
}

// Evaluation decodes whole pixels, never shrunk: a shrunk decode differs from PIL's by more
// than a level.
void ImagePipeline::plan_evaluation(Plan* plan) const {
  if (options_.eval_resize != EvalResize::kShorterSideCenterCrop) {
    shrink_region(1, plan);
    return;
  }
  const int S = options_.image_size;
  const int scale_size = static_cast<int>(std::floor(S / options_.crop_pct));
  plan->resize_to = shorter_side_size(plan->source.width, plan->source.height, scale_size);
  plan->center_crop = true;
  plan->crop = center_crop_rect(plan->resize_to.width, plan->resize_to.height, S, S);
  // Only the pixels the crop's part of the resize reads are decoded.
  const PixelRect needed =
      resize_window_source(plan->source.width, plan->source.height, plan->resize_to.width,
                           plan->resize_to.height, options_.interpolation,
                           {plan->crop.left, plan->crop.top, plan->crop.width, plan->crop.height});
  plan->region = {needed.top, needed.left, needed.bottom - needed.top, needed.right - needed.left};
}

// The region in pixels of the image shrunk by f: whole pixels around it are decoded, and the
// box keeps its exact (fractional) edges.
void ImagePipeline::shrink_region(int f, Plan* plan) {
  plan->reduction = f;
  const CropRect& r = plan->region;
  const double left = static_cast<double>(r.left) / f, top = static_cast<double>(r.top) / f;
  const double right = static_cast<double>(r.left + r.width) / f;
  const double bottom = static_cast<double>(r.top + r.height) / f;
  const int reduced_width = (plan->source.width + f - 1) / f;
  const int reduced_height = (plan->source.height + f - 1) / f;
  const int x0 = static_cast<int>(std::floor(left)), y0 = static_cast<int>(std::floor(top));
  const int x1 = std::min(reduced_width, static_cast<int>(std::ceil(right)));
  const int y1 = std::min(reduced_height, static_cast<int>(std::ceil(bottom)));
  plan->region = {y0, x0, y1 - y0, x1 - x0};
  plan->box = {left - x0, top - y0, std::min(right, static_cast<double>(x1)) - x0,
               std::min(bottom, static_cast<double>(y1)) - y0};
}

Image ImagePipeline::transform(Image image, const Plan& plan) const {
  const auto augment = [&] {
    if (plan.flip) mirror_horizontally(&image);
    for (const AugmentOpDraw& op : plan.ops) apply_augment_op(op, &image);
  };
  const auto resize_planned = [&] {
    const bool whole = plan.box.left == 0 && plan.box.top == 0 && plan.box.right == image.width &&
                       plan.box.bottom == image.height;
    if (whole && plan.resize_to.width == image.width && plan.resize_to.height == image.height) {
      return;  // PIL returns a copy of the image: nothing to do
    }
    image = resize(image, plan.resize_to.width, plan.resize_to.height, options_.interpolation,
                   plan.box);
  };
  if (plan.center_crop) {  // evaluation: Resize, then CenterCrop, computed as one window
    const CropRect& c = plan.crop;
    const ImagePart part{image, plan.region.left, plan.region.top, plan.source.width,
                         plan.source.height};
    return resize_window(part, plan.resize_to.width, plan.resize_to.height, options_.interpolation,
                         {c.left, c.top, c.width, c.height});
  }
  if (plan.augment_first) {
    augment();
    resize_planned();
  } else {
    resize_planned();
    augment();
  }
  return image;
}

namespace {

// out[i] = (pixels[i * stride] / 255 - mean) / stddev: ToTensor and Normalize of one channel,
// with the float operations of the stored formats' transform (data/transforms.cc), so that
// both give the same bits; IEEE division is exact in every vector width.
DGQA_SIMD_CLONES void normalise_channel(const uint8_t* pixels, int stride, int64_t count,
                                        float mean, float stddev, float* out) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    out[i] = (static_cast<float>(pixels[i * stride]) / 255.f - mean) / stddev;
  }
}

}  // namespace

void ImagePipeline::to_model_input(const Image& image, float* out) const {
  const int64_t plane = int64_t{image.width} * image.height;
  for (int c = 0; c < image.channels; ++c) {
    normalise_channel(image.pixels.data() + c, image.channels, plane, mean_[c], stddev_[c],
                      out + c * plane);
  }
}

void ImagePipeline::apply_encoded(const uint8_t* bytes, size_t size, const std::string& name,
                                  int64_t epoch, int64_t example, float* out) const {
  const ImageHeader header = read_image_header(bytes, size, name);
  const Plan p = plan(header.width, header.height, epoch, example,
                      /*can_reduce=*/header.format == ImageFormat::kJpeg);
  const CropRect& r = p.region;
  const bool whole = r.left == 0 && r.top == 0 &&
                     r.width == (header.width + p.reduction - 1) / p.reduction &&
                     r.height == (header.height + p.reduction - 1) / p.reduction;
  Image source = whole ? decode_image(bytes, size, options_.channels, name, p.reduction)
                       : decode_image_region(bytes, size, options_.channels, name, p.reduction,
                                             r.left, r.top, r.width, r.height);
  to_model_input(transform(std::move(source), p), out);
}

void ImagePipeline::apply_decoded(const Image& image, int64_t epoch, int64_t example,
                                  float* out) const {
  const Plan p = plan(image.width, image.height, epoch, example, /*can_reduce=*/false);
  const CropRect& r = p.region;
  const bool whole =
      r.left == 0 && r.top == 0 && r.width == image.width && r.height == image.height;
  to_model_input(transform(whole ? image : crop(image, r.left, r.top, r.width, r.height), p), out);
}

}  // namespace dgqa
