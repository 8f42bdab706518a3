// RandAugment as torchvision 0.14 runs it on PIL 9.4 images. Each operation repeats the
// arithmetic of the Python and C code it mirrors (double where Python computes, float where
// PIL's C code does, the same truncations and rounding), since any other order can move a pixel.
#include "data/rand_augment.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/simd.h"
namespace dgqa {
namespace {

constexpr int kOpCount = 14;
constexpr double kPi = 3.141592653589793;

double radians(double degrees) {
  return degrees * (kPi / 180.0);
}
double degrees(double radians) {
  return radians * (180.0 / kPi);
}

// torch.linspace(start, end, bins)[index] in float32: the first half counts up from start, the
// second down from end. torch's CPU kernel is built with fused multiply-add, hence the fma.
float linspace_at(float start, float end, int bins, int index) {
  if (bins == 1) return start;
  const float step = (end - start) / static_cast<float>(bins - 1);
  if (index < bins / 2) return std::fma(step, static_cast<float>(index), start);
  return std::fma(-step, static_cast<float>(bins - index - 1), end);
}

float magnitude_of(AugmentOp op, int magnitude, int bins, int width, int height) {
  switch (op) {
    case AugmentOp::kShearX:
    case AugmentOp::kShearY:
      return linspace_at(0.0f, 0.3f, bins, magnitude);
    case AugmentOp::kTranslateX:
      return linspace_at(0.0f, static_cast<float>(150.0 / 331.0 * width), bins, magnitude);
    case AugmentOp::kTranslateY:
      return linspace_at(0.0f, static_cast<float>(150.0 / 331.0 * height), bins, magnitude);
    case AugmentOp::kRotate:
      return linspace_at(0.0f, 30.0f, bins, magnitude);
    case AugmentOp::kBrightness:
    case AugmentOp::kColor:
    case AugmentOp::kContrast:
    case AugmentOp::kSharpness:
      return linspace_at(0.0f, 0.9f, bins, magnitude);
    case AugmentOp::kPosterize: {
      // 8 - round(arange(bins) / ((bins - 1) / 4)) in float32, halves to even.
      const float divisor = static_cast<float>((bins - 1) / 4.0);
      return static_cast<float>(
          8 - static_cast<int>(std::nearbyint(static_cast<float>(magnitude) / divisor)));
    }
    case AugmentOp::kSolarize:
      return linspace_at(255.0f, 0.0f, bins, magnitude);
    default:
      return 0.0f;
  }
}

bool is_signed(AugmentOp op) {
  return op >= AugmentOp::kShearX && op <= AugmentOp::kSharpness;
}

// ---- Geometry: PIL's Image.transform(AFFINE, NEAREST) with a zero fill. ----

using Affine = std::array<double, 6>;  // output pixel centre -> input position

inline int coord(double v) {
  return v < 0.0 ? -1 : static_cast<int>(v);
}
inline int floor_to_int(double v) {
  return v < 0.0 ? static_cast<int>(std::floor(v)) : static_cast<int>(v);
}

void copy_pixel(const Image& in, int x, int y, uint8_t* out) {
  const uint8_t* p = in.row(y) + int64_t{x} * in.channels;
  for (int c = 0; c < in.channels; ++c) out[c] = p[c];
}

// Axis-aligned maps: positions accumulated per column and per row, as PIL's scaling path does.
void transform_scaling(const Image& in, const Affine& a, Image* out) {
  std::vector<int> xs(out->width);
  double xo = a[2] + a[0] * 0.5;
  for (int x = 0; x < out->width; ++x, xo += a[0]) xs[x] = coord(xo);
  double yo = a[5] + a[4] * 0.5;
  for (int y = 0; y < out->height; ++y, yo += a[4]) {
    const int yi = coord(yo);
    if (yi < 0 || yi >= in.height) continue;
    uint8_t* row = out->row(y);
    for (int x = 0; x < out->width; ++x) {
      if (xs[x] >= 0 && xs[x] < in.width) copy_pixel(in, xs[x], yi, row + x * in.channels);
    }
  }
}

// 16.16 fixed point, stepping the source position by the rounded matrix entries.
void transform_fixed(const Image& in, const Affine& a, Image* out) {
  const auto fix = [](double v) { return floor_to_int(v * 65536.0 + 0.5); };
  const int32_t a0 = fix(a[0]), a1 = fix(a[1]), a3 = fix(a[3]), a4 = fix(a[4]);
  int32_t row_x = fix(a[2] + a[0] * 0.5 + a[1] * 0.5);
  int32_t row_y = fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
  for (int y = 0; y < out->height; ++y, row_x += a1, row_y += a4) {
    int32_t xx = row_x, yy = row_y;
    uint8_t* row = out->row(y);
    for (int x = 0; x < out->width; ++x, xx += a0, yy += a3) {
      const int xi = xx >> 16, yi = yy >> 16;  // arithmetic shifts floor
      if (xi >= 0 && xi < in.width && yi >= 0 && yi < in.height) {
        copy_pixel(in, xi, yi, row + x * in.channels);
      }
    }
  }
}

// Double precision when the fixed-point range would overflow.
void transform_float(const Image& in, const Affine& a, Image* out) {
  double xo = a[2] + a[1] * 0.5 + a[0] * 0.5;
  double yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
  for (int y = 0; y < out->height; ++y, xo += a[1], yo += a[4]) {
    double xx = xo, yy = yo;
    uint8_t* row = out->row(y);
    for (int x = 0; x < out->width; ++x, xx += a[0], yy += a[3]) {
      const int xi = coord(xx), yi = coord(yy);
      if (xi >= 0 && xi < in.width && yi >= 0 && yi < in.height) {
        copy_pixel(in, xi, yi, row + x * in.channels);
      }
    }
  }
}

void transform_affine(const Affine& a, Image* image) {
  Image out(image->width, image->height, image->channels);  // the fill: 0
  if (a[1] == 0 && a[3] == 0) {
    transform_scaling(*image, a, &out);
  } else {
    const auto fits = [&a](int x, int y) {
      return std::fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 &&
             std::fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
    };
    const int w = out.width, h = out.height;
    if (fits(0, 0) && fits(w, h) && fits(0, h) && fits(w, 0)) {
      transform_fixed(*image, a, &out);
    } else {
      transform_float(*image, a, &out);
    }
  }
  *image = std::move(out);
}

// torchvision's _get_inverse_affine_matrix (scale 1), term for term.
Affine inverse_affine(double cx, double cy, double angle, double tx, double ty, double shear_x,
                      double shear_y) {
  const double rot = radians(angle), sx = radians(shear_x), sy = radians(shear_y);
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  Affine m = {d / 1.0, -b / 1.0, 0.0, -c / 1.0, a / 1.0, 0.0};
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
  m[2] += cx;
  m[5] += cy;
  return m;
}

// F.affine with angle 0 and scale 1; center null means the image centre.
void affine(Image* image, double tx, double ty, double shear_x, double shear_y,
            bool center_at_origin) {
  const double cx = center_at_origin ? 0.0 : image->width * 0.5;
  const double cy = center_at_origin ? 0.0 : image->height * 0.5;
  transform_affine(inverse_affine(cx, cy, 0.0, tx, ty, shear_x, shear_y), image);
}

// Python's round(v, 15): the correctly rounded 15-decimal value, read back.
double round15(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.15f", v);
  return std::strtod(text, nullptr);
}

// Image.rotate(angle) about the centre, nearest, same size.
void rotate(Image* image, double angle) {
  angle = std::fmod(angle, 360.0);  // Python's %: the result takes the divisor's sign
  if (angle < 0) angle += 360.0;
  if (angle == 0) return;
  const int w = image->width, h = image->height;
  if (angle == 180 || ((angle == 90 || angle == 270) && w == h)) {
    Image out(w, h, image->channels);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        // Destination (x, y) takes the source pixel that the exact turn maps there.
        const int sx = angle == 180 ? w - 1 - x : (angle == 90 ? w - 1 - y : y);
        const int sy = angle == 180 ? h - 1 - y : (angle == 90 ? x : h - 1 - x);
        copy_pixel(*image, sx, sy, out.row(y) + x * image->channels);
      }
    }
    *image = std::move(out);
    return;
  }
  const double cx = w / 2.0, cy = h / 2.0;
  const double r = -radians(angle);
  Affine m = {round15(std::cos(r)),  round15(std::sin(r)), 0.0,
              round15(-std::sin(r)), round15(std::cos(r)), 0.0};
  const double x = -cx - 0, y = -cy - 0;
  const double m2 = m[0] * x + m[1] * y + m[2];
  const double m5 = m[3] * x + m[4] * y + m[5];
  m[2] = m2 + cx;
  m[5] = m5 + cy;
  transform_affine(m, image);
}

// ---- Colour: ImageEnhance's blends and ImageOps' lookup tables. ----

// Image.blend(degenerate, image, alpha) with PIL's float arithmetic and truncation, over n
// bytes. The float operations are the same in every vector width (no contraction).
DGQA_SIMD_CLONES void blend_bytes(const uint8_t* degenerate, float alpha, size_t n, uint8_t* px) {
  if (alpha >= 0 && alpha <= 1.0f) {  // stays in [0, 255]: a plain truncation
#pragma omp simd
    for (size_t i = 0; i < n; ++i) {
      const int d = degenerate[i];
      px[i] =
          static_cast<uint8_t>(static_cast<float>(d) + alpha * static_cast<float>(int{px[i]} - d));
    }
  } else {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) {
      const int d = degenerate[i];
      const float v = static_cast<float>(d) + alpha * static_cast<float>(int{px[i]} - d);
      px[i] = v <= 0.0f ? 0 : (v >= 255.0f ? 255 : static_cast<uint8_t>(v));
    }
  }
}

void blend_into(const std::vector<uint8_t>& degenerate, float alpha, Image* image) {
  if (alpha == 1.0f) return;
  if (alpha == 0.0f) {
    std::copy(degenerate.begin(), degenerate.end(), image->pixels.begin());
    return;
  }
  blend_bytes(degenerate.data(), alpha, image->pixels.size(), image->pixels.data());
}

inline uint8_t luma(const uint8_t* rgb) {
  return static_cast<uint8_t>((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

// convert("L").convert(mode): the grey value repeated over the channels.
std::vector<uint8_t> greyscale(const Image& image) {
  if (image.channels == 1) return image.pixels;
  std::vector<uint8_t> out(image.pixels.size());
  for (size_t i = 0; i < out.size(); i += 3) {
    out[i] = out[i + 1] = out[i + 2] = luma(&image.pixels[i]);
  }
  return out;
}

// ImageStat's mean of the greyscale image, rounded as ImageEnhance.Contrast does.
int grey_mean(const Image& image) {
  int64_t sum = 0;
  if (image.channels == 1) {
    for (uint8_t v : image.pixels) sum += v;
  } else {
    for (size_t i = 0; i < image.pixels.size(); i += 3) sum += luma(&image.pixels[i]);
  }
  const double count = static_cast<double>(int64_t{image.width} * image.height);
  return static_cast<int>(static_cast<double>(sum) / count + 0.5);
}

// ImageFilter.SMOOTH on each channel: the 3x3 kernel (1 1 1 / 1 5 1 / 1 1 1) / 13 in float,
// accumulated row below, row, row above; the border pixels stay as they are.
DGQA_SIMD_CLONES std::vector<uint8_t> smooth(const Image& image) {
  std::vector<uint8_t> out = image.pixels;
  const int w = image.width, h = image.height, c = image.channels;
  if (w < 3 || h < 3) return out;
  const float edge = 1.0f / 13.0f, centre = 5.0f / 13.0f;
  const auto row3 = [c](const uint8_t* p, float middle, float side) {
    return static_cast<float>(p[-c]) * side + static_cast<float>(p[0]) * middle +
           static_cast<float>(p[c]) * side;
  };
  for (int y = 1; y < h - 1; ++y) {
    const uint8_t* above = image.row(y - 1);
    const uint8_t* here = image.row(y);
    const uint8_t* below = image.row(y + 1);
    uint8_t* dst = out.data() + y * image.row_bytes();
#pragma omp simd
    for (int i = c; i < (w - 1) * c; ++i) {
      float s = 0.5f;
      s += row3(below + i, edge, edge);
      s += row3(here + i, centre, edge);
      s += row3(above + i, edge, edge);
      dst[i] = s <= 0.0f ? 0 : (s >= 255.0f ? 255 : static_cast<uint8_t>(s));
    }
  }
  return out;
}

using Lut = std::array<uint8_t, 256>;

void apply_luts(const std::vector<Lut>& luts, Image* image) {
  const size_t c = luts.size();
  uint8_t* px = image->pixels.data();
  for (size_t i = 0; i < image->pixels.size(); i += c) {
    for (size_t k = 0; k < c; ++k) px[i + k] = luts[k][px[i + k]];
  }
}

void apply_lut(const Lut& lut, Image* image) {
  for (uint8_t& v : image->pixels) v = lut[v];
}

std::vector<std::array<int64_t, 256>> histograms(const Image& image) {
  std::vector<std::array<int64_t, 256>> h(image.channels);
  for (auto& band : h) band.fill(0);
  const size_t c = image.channels;
  for (size_t i = 0; i < image.pixels.size(); i += c) {
    for (size_t k = 0; k < c; ++k) ++h[k][image.pixels[i + k]];
  }
  return h;
}

inline uint8_t clip_lut(int64_t v) {
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

void autocontrast(Image* image) {
  std::vector<Lut> luts;
  for (const auto& h : histograms(*image)) {
    int lo = 0, hi = 255;
    while (lo < 255 && h[lo] == 0) ++lo;
    while (hi > 0 && h[hi] == 0) --hi;
    Lut lut;
    if (hi <= lo) {
      for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i);
    } else {
      const double scale = 255.0 / (hi - lo);
      const double offset = -lo * scale;
      // int() truncates toward zero before the clamp.
      for (int i = 0; i < 256; ++i) lut[i] = clip_lut(static_cast<int64_t>(i * scale + offset));
    }
    luts.push_back(lut);
  }
  apply_luts(luts, image);
}

void equalize(Image* image) {
  std::vector<Lut> luts;
  for (const auto& h : histograms(*image)) {
    int64_t total = 0, last = 0;
    int nonzero = 0;
    for (int i = 0; i < 256; ++i) {
      if (h[i] == 0) continue;
      total += h[i];
      last = h[i];
      ++nonzero;
    }
    Lut lut;
    const int64_t step = nonzero <= 1 ? 0 : (total - last) / 255;
    if (step == 0) {
      for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i);
    } else {
      int64_t n = step / 2;
      for (int i = 0; i < 256; ++i) {
        lut[i] = clip_lut(n / step);
        n += h[i];
      }
    }
    luts.push_back(lut);
  }
  apply_luts(luts, image);
}

void posterize(Image* image, int bits) {
  const int mask = ~((1 << (8 - bits)) - 1);
  Lut lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i & mask);
  apply_lut(lut, image);
}

void solarize(Image* image, double threshold) {
  Lut lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i < threshold ? i : 255 - i);
  apply_lut(lut, image);
}

}  // namespace

std::vector<AugmentOpDraw> draw_rand_augment(int num_ops, int magnitude, int num_magnitude_bins,
                                             int width, int height, UniformStream* stream) {
  std::vector<AugmentOpDraw> draws;
  for (int i = 0; i < num_ops; ++i) {
    const auto op = static_cast<AugmentOp>(stream->below(kOpCount));
    float value = magnitude_of(op, magnitude, num_magnitude_bins, width, height);
    // Only signed operations draw the sign, as Python's `and` short-circuits.
    if (is_signed(op) && stream->uniform() < 0.5f) value = -value;
    draws.push_back(AugmentOpDraw{op, value});
  }
  return draws;
}

void apply_augment_op(const AugmentOpDraw& draw, Image* image) {
  const double m = draw.magnitude;
  switch (draw.op) {
    case AugmentOp::kIdentity:
      return;
    case AugmentOp::kShearX:
      return affine(image, 0, 0, degrees(std::atan(m)), 0.0, true);
    case AugmentOp::kShearY:
      return affine(image, 0, 0, 0.0, degrees(std::atan(m)), true);
    case AugmentOp::kTranslateX:
      return affine(image, static_cast<int>(m), 0, 0.0, 0.0, false);  // int() truncates
    case AugmentOp::kTranslateY:
      return affine(image, 0, static_cast<int>(m), 0.0, 0.0, false);
    case AugmentOp::kRotate:
      return rotate(image, m);
    case AugmentOp::kBrightness:
      return blend_into(std::vector<uint8_t>(image->pixels.size(), 0), static_cast<float>(1.0 + m),
                        image);
    case AugmentOp::kColor:
      return blend_into(greyscale(*image), static_cast<float>(1.0 + m), image);
    case AugmentOp::kContrast:
      return blend_into(
          std::vector<uint8_t>(image->pixels.size(), static_cast<uint8_t>(grey_mean(*image))),
          static_cast<float>(1.0 + m), image);
    case AugmentOp::kSharpness:
      return blend_into(smooth(*image), static_cast<float>(1.0 + m), image);
    case AugmentOp::kPosterize:
      return posterize(image, static_cast<int>(m));
    case AugmentOp::kSolarize:
      return solarize(image, m);
    case AugmentOp::kAutoContrast:
      return autocontrast(image);
    case AugmentOp::kEqualize:
      return equalize(image);
  }
}

}  // namespace dgqa
