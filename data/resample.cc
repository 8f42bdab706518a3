// PIL 9.4's Image.resize, re-derived from its behaviour: box coordinates in single precision, a
// filter whose support widens by the downscale factor, weights normalised to sum 1 and then
// turned into 22-bit fixed point, a horizontal pass that writes 8-bit rows, then a vertical pass.
#include "data/resample.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "common/simd.h"

namespace dgqa {
namespace {

// Fixed-point fraction bits of the weights: 8 bits of pixel and 2 of headroom in an int32.
constexpr int kWeightBits = 22;
constexpr int32_t kHalf = int32_t{1} << (kWeightBits - 1);

double bilinear_weight(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Keys' cubic with a = -0.5, evaluated in PIL's operation order so the doubles agree.
double bicubic_weight(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// For each output position along one axis: the first input index, the tap count and the taps.
struct AxisTaps {
  int max_taps = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // out_size * max_taps, zero past count
};

AxisTaps axis_taps(int in_size, float lo, float hi, int out_size, Interpolation interpolation) {
  const bool cubic = interpolation == Interpolation::kBicubic;
  const double base_support = cubic ? 2.0 : 1.0;
  // The box width is a float difference, as PIL subtracts the float box coordinates.
  const double scale = static_cast<double>(hi - lo) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = base_support * filter_scale;
  AxisTaps taps;
  taps.max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out_size);
  taps.count.resize(out_size);
  taps.weights.assign(static_cast<size_t>(out_size) * taps.max_taps, 0);
  std::vector<double> w(taps.max_taps);
  const double inv_scale = 1.0 / filter_scale;
  for (int i = 0; i < out_size; ++i) {
    const double center = lo + (i + 0.5) * scale;
    // Truncation, not floor: PIL converts with a C cast.
    const int first = std::max(static_cast<int>(center - support + 0.5), 0);
    const int last = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int count = last - first;
    double total = 0.0;
    for (int t = 0; t < count; ++t) {
      const double x = (t + first - center + 0.5) * inv_scale;
      w[t] = cubic ? bicubic_weight(x) : bilinear_weight(x);
      total += w[t];
    }
    int32_t* out = &taps.weights[static_cast<size_t>(i) * taps.max_taps];
    for (int t = 0; t < count; ++t) {
      const double v = total != 0.0 ? w[t] / total : w[t];
      // Rounds half away from zero, again through a truncating cast.
      out[t] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kWeightBits)
                                          : 0.5 + v * (1 << kWeightBits));
    }
    taps.first[i] = first;
    taps.count[i] = count;
  }
  return taps;
}

// The taps of output positions [first, first + count) of `taps`.
AxisTaps slice(const AxisTaps& taps, int first, int count) {
  AxisTaps part;
  part.max_taps = taps.max_taps;
  part.first.assign(taps.first.begin() + first, taps.first.begin() + first + count);
  part.count.assign(taps.count.begin() + first, taps.count.begin() + first + count);
  part.weights.assign(taps.weights.begin() + static_cast<int64_t>(first) * taps.max_taps,
                      taps.weights.begin() + static_cast<int64_t>(first + count) * taps.max_taps);
  return part;
}

DGQA_ALWAYS_INLINE inline uint8_t clip_fixed(int32_t sum) {
  const int32_t v = sum >> kWeightBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Four int32 lanes: the channels of one pixel (and one spare) summed together.
typedef int32_t Lanes __attribute__((vector_size(16)));

// The bytes of a row as int32, with zeros after them, so that the four lanes a tap loads (a
// pixel and the next one's red) are one plain vector load, also at the row's end.
constexpr int kWidePadding = 4;
DGQA_SIMD_CLONES void widen_row(const uint8_t* row, int64_t n, int32_t* wide) {
#pragma omp simd
  for (int64_t x = 0; x < n; ++x) wide[x] = row[x];
}

// One output row of the horizontal pass for gray images.
DGQA_SIMD_CLONES void horizontal_row_gray(const uint8_t* in, uint8_t* out, const AxisTaps& taps,
                                          int out_width) {
  for (int i = 0; i < out_width; ++i) {
    const int32_t* k = &taps.weights[static_cast<size_t>(i) * taps.max_taps];
    const uint8_t* p = in + taps.first[i];
    int32_t sum = kHalf;
    for (int t = 0; t < taps.count[i]; ++t) sum += p[t] * k[t];
    out[i] = clip_fixed(sum);
  }
}

// One output row of the horizontal pass for RGB images, from the row widened to int32
// (widen_row). A tap loads four lanes (a pixel and the next one's red, weighted but never
// stored), so it costs one vector multiply-add instead of three. The integer sums are those
// of per-channel loops, tap by tap in the same order.
DGQA_SIMD_CLONES void horizontal_row_rgb(const int32_t* wide, uint8_t* out, const AxisTaps& taps,
                                         int out_width) {
  for (int i = 0; i < out_width; ++i) {
    const int32_t* k = &taps.weights[static_cast<size_t>(i) * taps.max_taps];
    const int32_t* p = wide + static_cast<int64_t>(taps.first[i]) * 3;
    Lanes sum = {kHalf, kHalf, kHalf, kHalf};
    for (int t = 0; t < taps.count[i]; ++t, p += 3) {
      Lanes pixel;
      std::memcpy(&pixel, p, sizeof pixel);
      sum += pixel * k[t];
    }
    for (int c = 0; c < 3; ++c) out[i * 3 + c] = clip_fixed(sum[c]);
  }
}

// Rows [row0, row0 + out.height) of `in` resampled horizontally into `out`.
void horizontal_pass(const Image& in, int row0, const AxisTaps& taps, Image* out) {
  if (in.channels != 3) {
    for (int y = 0; y < out->height; ++y) {
      horizontal_row_gray(in.row(row0 + y), out->row(y), taps, out->width);
    }
    return;
  }
  std::vector<int32_t> wide(in.row_bytes() + kWidePadding, 0);
  for (int y = 0; y < out->height; ++y) {
    widen_row(in.row(row0 + y), in.row_bytes(), wide.data());
    horizontal_row_rgb(wide.data(), out->row(y), taps, out->width);
  }
}

// out[x] = clip(kHalf + sum over taps of w[t] * rows[t][x]) for one output row of the
// vertical pass: whole input rows, accumulated along the contiguous row so that it vectorises.
DGQA_SIMD_CLONES void vertical_row(const uint8_t* const* rows, const int32_t* w, int count,
                                   int64_t n, int32_t* acc, uint8_t* out) {
#pragma omp simd
  for (int64_t x = 0; x < n; ++x) acc[x] = kHalf;
  for (int t = 0; t < count; ++t) {
    const uint8_t* src = rows[t];
    const int32_t weight = w[t];
#pragma omp simd
    for (int64_t x = 0; x < n; ++x) acc[x] += src[x] * weight;
  }
#pragma omp simd
  for (int64_t x = 0; x < n; ++x) out[x] = clip_fixed(acc[x]);
}

// Vertical pass; `row_shift` maps tap rows to rows of `in`.
void vertical_pass(const Image& in, int row_shift, const AxisTaps& taps, Image* out) {
  std::vector<int32_t> acc(in.row_bytes());
  std::vector<const uint8_t*> rows(taps.max_taps);
  for (int y = 0; y < out->height; ++y) {
    for (int t = 0; t < taps.count[y]; ++t) rows[t] = in.row(taps.first[y] + t - row_shift);
    vertical_row(rows.data(), &taps.weights[static_cast<size_t>(y) * taps.max_taps], taps.count[y],
                 in.row_bytes(), acc.data(), out->row(y));
  }
}

// NEAREST as PIL does it: an axis-aligned affine map whose source position is accumulated
// step by step in double and truncated (negative positions fall outside).
std::vector<int> nearest_indices(float lo, float hi, int out_size) {
  const double step = static_cast<double>(hi - lo) / out_size;
  double pos = lo + step * 0.5;
  std::vector<int> index(out_size);
  for (int i = 0; i < out_size; ++i) {
    index[i] = pos < 0.0 ? -1 : static_cast<int>(pos);
    pos += step;
  }
  return index;
}

Image resize_nearest(const Image& in, int out_width, int out_height, const float box[4]) {
  const std::vector<int> xs = nearest_indices(box[0], box[2], out_width);
  const std::vector<int> ys = nearest_indices(box[1], box[3], out_height);
  Image out(out_width, out_height, in.channels);  // zero where the source is outside
  const int c = in.channels;
  for (int y = 0; y < out_height; ++y) {
    if (ys[y] < 0 || ys[y] >= in.height) continue;
    const uint8_t* src = in.row(ys[y]);
    uint8_t* dst = out.row(y);
    for (int x = 0; x < out_width; ++x) {
      if (xs[x] < 0 || xs[x] >= in.width) continue;
      std::memcpy(dst + int64_t{x} * c, src + int64_t{xs[x]} * c, c);
    }
  }
  return out;
}

// The window of PIL's separable resize of a source image to out_width x out_height from
// `box`, reading only `part` of the source: the taps of the whole output, cut to the window's
// rows and columns, so the window's pixels are those of the whole resize.
Image separable_resize(const ImagePart& part, int out_width, int out_height,
                       Interpolation interpolation, const float box[4],
                       const ResizeWindow& window) {
  const Image& in = part.image;
  // PIL's test compares the box's right edge with the output width (not the input's).
  const bool need_horizontal = out_width != part.source_width || box[0] != 0 || box[2] != out_width;
  const bool need_vertical =
      out_height != part.source_height || box[1] != 0 || box[3] != out_height;
  const AxisTaps vertical =
      slice(axis_taps(part.source_height, box[1], box[3], out_height, interpolation), window.top,
            window.height);
  const int first_row = need_vertical ? vertical.first[0] : window.top;
  const int last_row = need_vertical
                           ? vertical.first[window.height - 1] + vertical.count[window.height - 1]
                           : window.top + window.height;
  Image rows;  // the window's columns of the rows the vertical pass reads
  if (need_horizontal) {
    AxisTaps horizontal =
        slice(axis_taps(part.source_width, box[0], box[2], out_width, interpolation), window.left,
              window.width);
    for (int& first : horizontal.first) first -= part.left;
    rows = Image(window.width, last_row - first_row, in.channels);
    horizontal_pass(in, first_row - part.top, horizontal, &rows);
  } else {
    rows =
        crop(in, window.left - part.left, first_row - part.top, window.width, last_row - first_row);
  }
  if (!need_vertical) return rows;
  Image out(window.width, window.height, in.channels);
  vertical_pass(rows, first_row, vertical, &out);
  return out;
}

// Whether a window of a resize takes the separable path (else: a whole resize, then a crop).
bool separable_window(int source_width, int source_height, int full_width, int full_height,
                      Interpolation interpolation, const ResizeWindow& w) {
  const bool inside = w.left >= 0 && w.top >= 0 && w.left + w.width <= full_width &&
                      w.top + w.height <= full_height;
  const bool same_size = full_width == source_width && full_height == source_height;
  return inside && !same_size && interpolation != Interpolation::kNearest;
}

}  // namespace

Image resize(const Image& in, int out_width, int out_height, Interpolation interpolation,
             const Box& box_in) {
  // PIL receives the box as four C floats.
  const float box[4] = {static_cast<float>(box_in.left), static_cast<float>(box_in.top),
                        static_cast<float>(box_in.right), static_cast<float>(box_in.bottom)};
  // Image.resize returns a copy when neither size nor box change anything.
  if (out_width == in.width && out_height == in.height && box_in.left == 0 && box_in.top == 0 &&
      box_in.right == in.width && box_in.bottom == in.height) {
    return in;
  }
  // An integral box of exactly the output size is a plain crop, whatever the filter.
  if (box[0] - static_cast<int>(box[0]) == 0 && box[2] - box[0] == out_width &&
      box[1] - static_cast<int>(box[1]) == 0 && box[3] - box[1] == out_height) {
    return crop(in, static_cast<int>(box[0]), static_cast<int>(box[1]),
                static_cast<int>(box[2]) - static_cast<int>(box[0]),
                static_cast<int>(box[3]) - static_cast<int>(box[1]));
  }
  if (interpolation == Interpolation::kNearest) {
    return resize_nearest(in, out_width, out_height, box);
  }
  return separable_resize({in, 0, 0, in.width, in.height}, out_width, out_height, interpolation,
                          box, {0, 0, out_width, out_height});
}

PixelRect resize_window_source(int source_width, int source_height, int full_width, int full_height,
                               Interpolation interpolation, const ResizeWindow& window) {
  if (!separable_window(source_width, source_height, full_width, full_height, interpolation,
                        window)) {
    return {0, 0, source_width, source_height};
  }
  const auto span = [&](int source_size, int full_size, int first, int count) {
    const AxisTaps taps =
        axis_taps(source_size, 0.f, static_cast<float>(source_size), full_size, interpolation);
    int low = source_size, high = 0;
    for (int i = first; i < first + count; ++i) {
      low = std::min(low, taps.first[i]);
      high = std::max(high, taps.first[i] + taps.count[i]);
    }
    return std::pair<int, int>{low, high};
  };
  const auto [left, right] = span(source_width, full_width, window.left, window.width);
  const auto [top, bottom] = span(source_height, full_height, window.top, window.height);
  return {left, top, right, bottom};
}

Image resize_window(const ImagePart& part, int full_width, int full_height,
                    Interpolation interpolation, const ResizeWindow& window) {
  if (!separable_window(part.source_width, part.source_height, full_width, full_height,
                        interpolation, window)) {
    if (part.left != 0 || part.top != 0 || part.image.width != part.source_width ||
        part.image.height != part.source_height) {
      throw std::logic_error("resize_window: this window needs the whole image");
    }
    return crop(resize(part.image, full_width, full_height, interpolation), window.left, window.top,
                window.width, window.height);
  }
  const float box[4] = {0.f, 0.f, static_cast<float>(part.source_width),
                        static_cast<float>(part.source_height)};
  return separable_resize(part, full_width, full_height, interpolation, box, window);
}

Image resize(const Image& in, int out_width, int out_height, Interpolation interpolation) {
  return resize(in, out_width, out_height, interpolation,
                Box{0.0, 0.0, static_cast<double>(in.width), static_cast<double>(in.height)});
}

Image crop(const Image& in, int left, int top, int width, int height) {
  Image out(width, height, in.channels);
  const int x0 = std::max(left, 0), x1 = std::min(left + width, in.width);
  if (x1 <= x0) return out;
  const int64_t c = in.channels;
  for (int y = std::max(top, 0); y < std::min(top + height, in.height); ++y) {
    std::memcpy(out.row(y - top) + (x0 - left) * c, in.row(y) + x0 * c, (x1 - x0) * c);
  }
  return out;
}

void mirror_horizontally(Image* image) {
  const int c = image->channels;
  for (int y = 0; y < image->height; ++y) {
    uint8_t* row = image->row(y);
    for (int l = 0, r = image->width - 1; l < r; ++l, --r) {
      for (int k = 0; k < c; ++k) std::swap(row[l * c + k], row[r * c + k]);
    }
  }
}

}  // namespace dgqa
