// PIL 9.4's Image.resize, re-derived from its behaviour: box coordinates in single precision, a
// filter whose support widens by the downscale factor, weights normalised to sum 1 and then
// turned into 22-bit fixed point, a horizontal pass that writes 8-bit rows, then a vertical pass.
#include "data/resample.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

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

inline uint8_t clip_fixed(int32_t sum) {
  const int32_t v = sum >> kWeightBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// One output row of the horizontal pass; C channels fixed at compile time so the channel loop
// unrolls.
template <int C>
void horizontal_row(const uint8_t* in, uint8_t* out, const AxisTaps& taps, int out_width) {
  for (int i = 0; i < out_width; ++i) {
    const int32_t* k = &taps.weights[static_cast<size_t>(i) * taps.max_taps];
    const uint8_t* p = in + static_cast<int64_t>(taps.first[i]) * C;
    const int count = taps.count[i];
    // Separate scalar accumulators: a strided gather would cost more than it vectorises.
    int32_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
    for (int t = 0; t < count; ++t, p += C) {
      s0 += p[0] * k[t];
      if (C == 3) {
        s1 += p[1] * k[t];
        s2 += p[2] * k[t];
      }
    }
    out[i * C] = clip_fixed(s0);
    if (C == 3) {
      out[i * C + 1] = clip_fixed(s1);
      out[i * C + 2] = clip_fixed(s2);
    }
  }
}

// Rows [row0, row0 + out.height) of `in` resampled horizontally into `out`.
void horizontal_pass(const Image& in, int row0, const AxisTaps& taps, Image* out) {
  for (int y = 0; y < out->height; ++y) {
    if (in.channels == 3) {
      horizontal_row<3>(in.row(row0 + y), out->row(y), taps, out->width);
    } else {
      horizontal_row<1>(in.row(row0 + y), out->row(y), taps, out->width);
    }
  }
}

// Vertical pass: each output row is a weighted sum of whole input rows, accumulated over the
// contiguous row so that the loop vectorises. `row_shift` maps tap rows to rows of `in`.
void vertical_pass(const Image& in, int row_shift, const AxisTaps& taps, Image* out) {
  const int64_t n = in.row_bytes();
  std::vector<int32_t> acc(n);
  for (int y = 0; y < out->height; ++y) {
    std::fill(acc.begin(), acc.end(), kHalf);
    const int32_t* k = &taps.weights[static_cast<size_t>(y) * taps.max_taps];
    for (int t = 0; t < taps.count[y]; ++t) {
      const uint8_t* src = in.row(taps.first[y] + t - row_shift);
      const int32_t w = k[t];
      int32_t* a = acc.data();
      for (int64_t x = 0; x < n; ++x) a[x] += src[x] * w;
    }
    uint8_t* dst = out->row(y);
    for (int64_t x = 0; x < n; ++x) dst[x] = clip_fixed(acc[x]);
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
  // PIL's test compares the box's right edge with the output width (not the input's).
  const bool need_horizontal = out_width != in.width || box[0] != 0 || box[2] != out_width;
  const bool need_vertical = out_height != in.height || box[1] != 0 || box[3] != out_height;
  const AxisTaps vertical = axis_taps(in.height, box[1], box[3], out_height, interpolation);
  const int first_row = vertical.first[0];
  const int last_row = vertical.first[out_height - 1] + vertical.count[out_height - 1];

  Image current;
  const Image* source = &in;
  int row_shift = 0;
  if (need_horizontal) {
    const AxisTaps horizontal = axis_taps(in.width, box[0], box[2], out_width, interpolation);
    current = Image(out_width, last_row - first_row, in.channels);
    horizontal_pass(in, first_row, horizontal, &current);
    source = &current;
    row_shift = first_row;
  }
  if (!need_vertical) return source == &in ? in : current;
  Image out(source->width, out_height, in.channels);
  vertical_pass(*source, row_shift, vertical, &out);
  return out;
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
