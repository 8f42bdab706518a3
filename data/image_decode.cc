#include "data/image_decode.h"

#include <algorithm>
#include <array>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

// After <cstdio>: jpeglib.h uses FILE and size_t without including their headers.
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "common/error.h"

// libjpeg and libpng report errors by longjmp. Every call into them runs inside
// jpeg_guarded/png_guarded, whose setjmp is the target; the code between (the lambda and the
// libraries' C frames) holds no object with a destructor, so the jump skips none. The error
// becomes an InputError only once control is back in ordinary C++.

namespace dgqa {
namespace {

// Larger images are refused before anything is allocated for them (2^28 pixels: 768 MiB as RGB).
constexpr int64_t kMaxPixels = int64_t{1} << 28;
// A hostile progressive JPEG can hold many thousands of tiny scans, each a pass over the image.
constexpr int kMaxJpegScans = 1000;

const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

bool is_png(const uint8_t* bytes, size_t size) {
  return size >= 8 && std::memcmp(bytes, kPngSignature, 8) == 0;
}

bool is_jpeg(const uint8_t* bytes, size_t size) {
  return size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw InputError(name + ": " + what);
}

void check_pixel_count(int64_t width, int64_t height, const std::string& name) {
  if (width <= 0 || height <= 0) fail(name, "image has no pixels");
  if (width > kMaxPixels / height) {  // width * height > kMaxPixels, without overflow
    fail(name, "image too large (" + std::to_string(width) + "x" + std::to_string(height) +
                   " pixels, at most 2^28)");
  }
}

void check_arguments(int channels, int jpeg_reduction) {
  if (channels != 1 && channels != 3) throw std::invalid_argument("decode_image: channels 1 or 3");
  if (jpeg_reduction != 1 && jpeg_reduction != 2 && jpeg_reduction != 4 && jpeg_reduction != 8) {
    throw std::invalid_argument("decode_image: jpeg_reduction must be 1, 2, 4 or 8");
  }
}

struct Rect {
  int left, top, width, height;
};

void check_region(const Rect& r, int width, int height, const std::string& name) {
  if (r.width <= 0 || r.height <= 0 || r.left < 0 || r.top < 0 || r.left > width - r.width ||
      r.top > height - r.height) {
    fail(name, "region " + std::to_string(r.width) + "x" + std::to_string(r.height) + "+" +
                   std::to_string(r.left) + "+" + std::to_string(r.top) + " is not inside the " +
                   std::to_string(width) + "x" + std::to_string(height) + " image");
  }
}

// ---- PIL's conversions of one row ----

// PIL's RGB -> L: ITU-R 601-2 luma in 16-bit fixed point, rounded.
inline uint8_t pil_luma(int r, int g, int b) {
  return static_cast<uint8_t>((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

void rgb_to_l(const uint8_t* in, int in_step, uint8_t* out, int n) {
  for (int x = 0; x < n; ++x, in += in_step) out[x] = pil_luma(in[0], in[1], in[2]);
}

// PIL x * y / 255, rounded, in integers.
inline int pil_muldiv255(int x, int y) {
  int t = x * y + 128;
  return ((t >> 8) + t) >> 8;
}

// libjpeg's CMYK output as PIL stores it (inverted: Adobe's polarity), then PIL's CMYK -> RGB.
void jpeg_cmyk_to_rgb(const uint8_t* in, uint8_t* out, int n) {
  for (int x = 0; x < n; ++x, in += 4, out += 3) {
    int nk = in[3];  // 255 - PIL's K, PIL's K being 255 - libjpeg's
    for (int c = 0; c < 3; ++c) {
      int v = nk - pil_muldiv255(255 - in[c], nk);
      out[c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  }
}

void jpeg_cmyk_to_l(const uint8_t* in, uint8_t* out, int n) {
  for (int x = 0; x < n; ++x, in += 4) {
    uint8_t rgb[3];
    jpeg_cmyk_to_rgb(in, rgb, 1);
    out[x] = pil_luma(rgb[0], rgb[1], rgb[2]);
  }
}

// ---- JPEG ----

struct JpegError {
  jpeg_error_mgr mgr;  // first member: libjpeg sees a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 32];
};

[[noreturn]] void jpeg_fail_with(j_common_ptr cinfo, const char* message) {
  auto* error = reinterpret_cast<JpegError*>(cinfo->err);
  std::snprintf(error->message, sizeof(error->message), "%s", message);
  std::longjmp(error->jump, 1);
}

[[noreturn]] void on_jpeg_error(j_common_ptr cinfo) {
  char text[JMSG_LENGTH_MAX];
  cinfo->err->format_message(cinfo, text);
  char message[JMSG_LENGTH_MAX + 32];  // no std::string: longjmp would skip its destructor
  std::snprintf(message, sizeof(message), "corrupt JPEG (%s)", text);
  jpeg_fail_with(cinfo, message);
}

// Warnings are ignored as PIL ignores them ("extraneous bytes before marker" images decode),
// except running out of data: PIL calls that a truncated image.
void on_jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    jpeg_fail_with(cinfo, "truncated JPEG data");
  }
}

void on_jpeg_progress(j_common_ptr cinfo) {
  auto* dinfo = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (dinfo->input_scan_number > kMaxJpegScans) jpeg_fail_with(cinfo, "too many JPEG scans");
}

template <typename Fn>
bool jpeg_guarded(JpegError& error, Fn&& fn) {
  if (setjmp(error.jump) != 0) return false;
  fn();
  return true;
}

// One decompressor over `bytes`; every libjpeg call goes through run().
class JpegDecoder {
 public:
  JpegDecoder(const uint8_t* bytes, size_t size, const std::string& name) : name_(name) {
    std::memset(&cinfo_, 0, sizeof(cinfo_));
    cinfo_.err = jpeg_std_error(&error_.mgr);
    error_.mgr.error_exit = on_jpeg_error;
    error_.mgr.emit_message = on_jpeg_message;
    progress_.progress_monitor = on_jpeg_progress;
    try {
      run([&] {
        jpeg_create_decompress(&cinfo_);
        cinfo_.progress = &progress_;
        jpeg_mem_src(&cinfo_, bytes, static_cast<unsigned long>(size));
        jpeg_read_header(&cinfo_, TRUE);
      });
      check_pixel_count(cinfo_.image_width, cinfo_.image_height, name_);
      int n = cinfo_.num_components;
      if (n != 1 && n != 3 && n != 4) {
        fail(name_, "unsupported JPEG with " + std::to_string(n) + " components");
      }
    } catch (...) {
      jpeg_destroy_decompress(&cinfo_);  // the destructor of a half-built object never runs
      throw;
    }
  }
  ~JpegDecoder() { jpeg_destroy_decompress(&cinfo_); }
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;

  template <typename Fn>
  void run(Fn&& fn) {
    if (!jpeg_guarded(error_, fn)) fail(name_, error_.message);
  }

  jpeg_decompress_struct& cinfo() { return cinfo_; }
  [[noreturn]] void fail_with(const std::string& what) const { fail(name_, what); }

 private:
  std::string name_;
  jpeg_decompress_struct cinfo_;
  JpegError error_;
  jpeg_progress_mgr progress_{};
};

// PIL decodes a 1-component JPEG as "L", 3 as "RGB" (libjpeg converting from YCbCr), 4 as
// "CMYK" (libjpeg converting from YCCK); "L" from RGB and anything from CMYK are PIL's own
// conversions, done here on libjpeg's rows.
J_COLOR_SPACE jpeg_output_space(int components, int channels) {
  if (components == 4) return JCS_CMYK;
  if (components == 1 && channels == 1) return JCS_GRAYSCALE;
  return JCS_RGB;  // gray -> RGB replicates, as PIL does
}

// Turns `n` pixels of libjpeg's output row into the requested channels.
void convert_jpeg_row(const uint8_t* in, int components, uint8_t* out, int channels, int n) {
  if (components == channels) {
    std::memcpy(out, in, static_cast<size_t>(n) * channels);
  } else if (components == 3) {
    rgb_to_l(in, 3, out, n);
  } else if (channels == 3) {
    jpeg_cmyk_to_rgb(in, out, n);
  } else {
    jpeg_cmyk_to_l(in, out, n);
  }
}

void start_jpeg(JpegDecoder& decoder, int channels, int reduction) {
  jpeg_decompress_struct& cinfo = decoder.cinfo();
  cinfo.out_color_space = jpeg_output_space(cinfo.num_components, channels);
  cinfo.scale_num = 1;
  cinfo.scale_denom = static_cast<unsigned>(reduction);
  decoder.run([&] { jpeg_start_decompress(&cinfo); });
}

// Reads rows [first, first + count) of the (possibly cropped) output, first being the next row
// libjpeg gives, and hands each with its index to `sink(row, y)`.
template <typename Sink>
void read_jpeg_rows(JpegDecoder& decoder, int first, int count, Sink&& sink) {
  jpeg_decompress_struct& cinfo = decoder.cinfo();
  const int group = std::max(1, cinfo.rec_outbuf_height);
  const size_t row_bytes = size_t{cinfo.output_width} * cinfo.output_components;
  std::vector<uint8_t> scratch(row_bytes * group);
  std::array<JSAMPROW, 16> rows{};
  for (int i = 0; i < group && i < 16; ++i) rows[i] = scratch.data() + i * row_bytes;
  for (int y = first; y < first + count;) {
    JDIMENSION got = 0;
    int want = std::min({group, 16, first + count - y});
    decoder.run([&] { got = jpeg_read_scanlines(&cinfo, rows.data(), want); });
    if (got == 0) decoder.fail_with("truncated JPEG data");  // not with an in-memory source
    for (JDIMENSION i = 0; i < got; ++i) sink(rows[i], y + static_cast<int>(i));
    y += static_cast<int>(got);
  }
}

Image decode_jpeg(const uint8_t* bytes, size_t size, int channels, const std::string& name,
                  int reduction) {
  JpegDecoder decoder(bytes, size, name);
  start_jpeg(decoder, channels, reduction);
  jpeg_decompress_struct& cinfo = decoder.cinfo();
  Image image(static_cast<int>(cinfo.output_width), static_cast<int>(cinfo.output_height),
              channels);
  const int components = cinfo.output_components;
  if (components == channels) {
    // libjpeg's rows are the output: read straight into the image.
    std::vector<JSAMPROW> rows(image.height);
    for (int y = 0; y < image.height; ++y) rows[y] = image.row(y);
    for (int y = 0; y < image.height;) {
      JDIMENSION got = 0;
      decoder.run([&] {
        got =
            jpeg_read_scanlines(&cinfo, rows.data() + y, static_cast<JDIMENSION>(image.height - y));
      });
      if (got == 0) fail(name, "truncated JPEG data");
      y += static_cast<int>(got);
    }
  } else {
    read_jpeg_rows(decoder, 0, image.height, [&](const uint8_t* row, int y) {
      convert_jpeg_row(row, components, image.row(y), channels, image.width);
    });
  }
  // Up to the EOI marker: PIL calls a file without one truncated, and ignores what follows it.
  decoder.run([&] { jpeg_finish_decompress(&cinfo); });
  return image;
}

Image decode_jpeg_region(const uint8_t* bytes, size_t size, int channels, const std::string& name,
                         int reduction, const Rect& r) {
  JpegDecoder decoder(bytes, size, name);
  start_jpeg(decoder, channels, reduction);
  jpeg_decompress_struct& cinfo = decoder.cinfo();
  check_region(r, static_cast<int>(cinfo.output_width), static_cast<int>(cinfo.output_height),
               name);
  // Fancy upsampling blends chroma across neighbouring samples, and a cropped decode treats its
  // own left and right border as the image's edge (the tests see the edge columns differ without
  // a margin): decode one iMCU more on every side, then cut. jpeg_skip_scanlines keeps the
  // context rows right; the rows above are a cheap precaution.
#if JPEG_LIB_VERSION >= 70
  const int dct_size = cinfo.min_DCT_h_scaled_size;
#else
  const int dct_size = cinfo.min_DCT_scaled_size;
#endif
  const int margin_x = cinfo.max_h_samp_factor * dct_size;
  const int margin_y = cinfo.max_v_samp_factor * dct_size;
  const int x0 = std::max(0, r.left - margin_x);
  const int x1 = std::min(static_cast<int>(cinfo.output_width), r.left + r.width + margin_x);
  JDIMENSION crop_x = static_cast<JDIMENSION>(x0);
  JDIMENSION crop_width = static_cast<JDIMENSION>(x1 - x0);
  // libjpeg-turbo 2.1's cropped rows differ inside the rectangle for 4x horizontal or vertical
  // sampling at reduced scales (seen with 4x2): those rare files decode whole rows.
  const bool crop_ok = cinfo.max_h_samp_factor <= 2 && cinfo.max_v_samp_factor <= 2;
  if (crop_ok && crop_width < cinfo.output_width) {
    decoder.run([&] { jpeg_crop_scanline(&cinfo, &crop_x, &crop_width); });
  } else {
    crop_x = 0;
  }
  const int y0 = std::max(0, r.top - margin_y);
  JDIMENSION skipped = 0;
  if (y0 > 0)
    decoder.run([&] { skipped = jpeg_skip_scanlines(&cinfo, static_cast<JDIMENSION>(y0)); });
  if (static_cast<int>(skipped) != y0) fail(name, "truncated JPEG data");

  Image image(r.width, r.height, channels);
  const int components = cinfo.output_components;
  const int skip_x = r.left - static_cast<int>(crop_x);
  read_jpeg_rows(decoder, y0, r.top + r.height - y0, [&](const uint8_t* row, int y) {
    if (y < r.top) return;
    convert_jpeg_row(row + static_cast<size_t>(skip_x) * components, components,
                     image.row(y - r.top), channels, r.width);
  });
  return image;
}

ImageHeader jpeg_header(const uint8_t* bytes, size_t size, const std::string& name) {
  JpegDecoder decoder(bytes, size, name);
  return {ImageFormat::kJpeg, static_cast<int>(decoder.cinfo().image_width),
          static_cast<int>(decoder.cinfo().image_height)};
}

// ---- PNG ----

struct PngSource {
  const uint8_t* bytes;
  size_t size;
  size_t position;
  char message[200];
};

void on_png_read(png_structp png, png_bytep out, png_size_t count) {
  auto* source = static_cast<PngSource*>(png_get_io_ptr(png));
  if (count > source->size - source->position) png_error(png, "truncated PNG data");
  std::memcpy(out, source->bytes + source->position, count);
  source->position += count;
}

// Keeps libpng's message for the InputError and jumps back to png_guarded.
void on_png_error(png_structp png, png_const_charp message) {
  auto* source = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(source->message, sizeof(source->message), "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

template <typename Fn>
bool png_guarded(png_structp png, Fn&& fn) {
  if (setjmp(png_jmpbuf(png)) != 0) return false;
  fn();
  return true;
}

// "IDAT: CRC error" -> "corrupt PNG (CRC error in chunk IDAT)"; our own read error as it is.
std::string png_error_text(const std::string& message) {
  if (message == "truncated PNG data") return message;
  const std::string crc = ": CRC error";
  if (message.size() > crc.size() &&
      message.compare(message.size() - crc.size(), crc.size(), crc) == 0) {
    return "corrupt PNG (CRC error in chunk " + message.substr(0, message.size() - crc.size()) +
           ")";
  }
  return "corrupt PNG (" + message + ")";
}

class PngDecoder {
 public:
  PngDecoder(const uint8_t* bytes, size_t size, const std::string& name)
      : name_(name), source_{bytes, size, 0, {}} {
    png_ = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source_, on_png_error, on_png_warning);
    if (png_ != nullptr) info_ = png_create_info_struct(png_);
    try {
      if (png_ == nullptr || info_ == nullptr) throw std::bad_alloc();
      read_header();
    } catch (...) {
      png_destroy_read_struct(&png_, &info_, nullptr);  // no destructor for a half-built object
      throw;
    }
  }
  ~PngDecoder() { png_destroy_read_struct(&png_, &info_, nullptr); }
  PngDecoder(const PngDecoder&) = delete;
  PngDecoder& operator=(const PngDecoder&) = delete;

  template <typename Fn>
  void run(Fn&& fn) {
    if (!png_guarded(png_, fn)) fail(name_, png_error_text(source_.message));
  }

  png_structp png() const { return png_; }
  png_infop info() const { return info_; }

 private:
  void read_header() {
    run([&] {
      png_set_read_fn(png_, &source_, on_png_read);
      // A bad CRC is an error in every chunk, not only in critical ones.
      png_set_crc_action(png_, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
      png_set_user_limits(png_, static_cast<png_uint_32>(kMaxPixels),
                          static_cast<png_uint_32>(kMaxPixels));
      // Text and colour profiles are not used (PIL's open ignores the profile too): skip them
      // unparsed, their CRCs still checked.
      static const png_byte kSkipped[] = "iCCP\0tEXt\0zTXt\0iTXt\0eXIf\0";
      png_set_keep_unknown_chunks(png_, PNG_HANDLE_CHUNK_NEVER, kSkipped, 5);
      png_read_info(png_, info_);
    });
    check_pixel_count(png_get_image_width(png_, info_), png_get_image_height(png_, info_), name_);
  }

  std::string name_;
  PngSource source_;
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
};

// What PIL makes of a PNG's samples once libpng has unpacked them to one byte (or, for 16-bit
// gray, two) per sample and dropped alpha and the low byte of other 16-bit samples.
enum class PngRows {
  kDirect,      // the rows are the output
  kRgbToL,      // RGB rows, PIL's luma
  kGrayLut,     // 1/2/4-bit gray: scaled to 0..255 ("1" gives 0/255, "L;2" x85, "L;4" x17)
  kPaletteLut,  // palette indices
  kGray16,      // PIL's mode "I": the 16-bit value clipped to 255
};

struct PngPlan {
  PngRows rows;
  int components;  // bytes per pixel of libpng's rows
  std::array<std::array<uint8_t, 3>, 256> lut{};
};

// PIL's palette: the PLTE entries, then the gray ramp PIL starts every palette from.
void fill_palette(PngDecoder& decoder, PngPlan& plan, int channels) {
  png_colorp colors = nullptr;
  int count = 0;
  png_get_PLTE(decoder.png(), decoder.info(), &colors, &count);
  for (int i = 0; i < 256; ++i) {
    uint8_t rgb[3] = {static_cast<uint8_t>(i), static_cast<uint8_t>(i), static_cast<uint8_t>(i)};
    if (i < count) rgb[0] = colors[i].red, rgb[1] = colors[i].green, rgb[2] = colors[i].blue;
    if (channels == 3) {
      plan.lut[i] = {rgb[0], rgb[1], rgb[2]};
    } else {
      plan.lut[i][0] = pil_luma(rgb[0], rgb[1], rgb[2]);
    }
  }
}

// Sets libpng's transformations (inside decoder.run) and says what to do with its rows.
PngPlan plan_png(PngDecoder& decoder, int channels) {
  png_structp png = decoder.png();
  const int depth = png_get_bit_depth(png, decoder.info());
  const int type = png_get_color_type(png, decoder.info());
  PngPlan plan{PngRows::kDirect, channels, {}};
  if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  if (depth < 8) png_set_packing(png);
  if (type == PNG_COLOR_TYPE_PALETTE) {
    plan.rows = PngRows::kPaletteLut;
    plan.components = 1;
    fill_palette(decoder, plan, channels);
  } else if (type == PNG_COLOR_TYPE_GRAY && depth == 16) {
    plan.rows = PngRows::kGray16;
    plan.components = 2;
  } else if (type == PNG_COLOR_TYPE_GRAY && depth < 8) {
    plan.rows = PngRows::kGrayLut;
    plan.components = 1;
    const int scale = 255 / ((1 << depth) - 1);
    for (int v = 0; v < (1 << depth); ++v) plan.lut[v].fill(static_cast<uint8_t>(v * scale));
  } else {
    if (depth == 16) png_set_strip_16(png);  // PIL keeps the high byte of RGB(A) and LA
    const bool gray = !(type & PNG_COLOR_MASK_COLOR);
    if (gray && channels == 3) png_set_gray_to_rgb(png);
    if (!gray && channels == 1) {
      plan.rows = PngRows::kRgbToL;
      plan.components = 3;
    }
  }
  return plan;
}

void convert_png_row(const uint8_t* in, const PngPlan& plan, uint8_t* out, int channels, int n) {
  switch (plan.rows) {
    case PngRows::kDirect:
      std::memcpy(out, in, static_cast<size_t>(n) * channels);
      break;
    case PngRows::kRgbToL:
      rgb_to_l(in, 3, out, n);
      break;
    case PngRows::kGray16:
      for (int x = 0; x < n; ++x) {
        const int v = (in[2 * x] << 8) | in[2 * x + 1];
        std::memset(out + x * channels, v > 255 ? 255 : v, channels);
      }
      break;
    case PngRows::kGrayLut:
    case PngRows::kPaletteLut:
      for (int x = 0; x < n; ++x) std::memcpy(out + x * channels, plan.lut[in[x]].data(), channels);
      break;
  }
}

Image decode_png(const uint8_t* bytes, size_t size, int channels, const std::string& name) {
  PngDecoder decoder(bytes, size, name);
  png_structp png = decoder.png();
  PngPlan plan;
  int passes = 1;
  decoder.run([&] {
    plan = plan_png(decoder, channels);
    passes = png_set_interlace_handling(png);
    png_read_update_info(png, decoder.info());
  });
  Image image(static_cast<int>(png_get_image_width(png, decoder.info())),
              static_cast<int>(png_get_image_height(png, decoder.info())), channels);
  const size_t row_bytes = size_t{png_get_image_width(png, decoder.info())} * plan.components;
  if (png_get_rowbytes(png, decoder.info()) != row_bytes) fail(name, "unexpected PNG row layout");

  if (plan.rows == PngRows::kDirect) {
    std::vector<png_bytep> rows(image.height);
    for (int y = 0; y < image.height; ++y) rows[y] = image.row(y);
    decoder.run([&] { png_read_image(png, rows.data()); });
  } else if (passes == 1) {
    std::vector<uint8_t> scratch(row_bytes);
    for (int y = 0; y < image.height; ++y) {
      decoder.run([&] { png_read_row(png, scratch.data(), nullptr); });
      convert_png_row(scratch.data(), plan, image.row(y), channels, image.width);
    }
  } else {
    // Adam7 fills every row over seven passes: keep libpng's whole image, then convert.
    std::vector<uint8_t> scratch(row_bytes * image.height);
    std::vector<png_bytep> rows(image.height);
    for (int y = 0; y < image.height; ++y) rows[y] = scratch.data() + y * row_bytes;
    decoder.run([&] { png_read_image(png, rows.data()); });
    for (int y = 0; y < image.height; ++y) {
      convert_png_row(rows[y], plan, image.row(y), channels, image.width);
    }
  }
  // The chunks after the image data: a missing IEND or a bad CRC there is an error too.
  decoder.run([&] { png_read_end(png, nullptr); });
  return image;
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// The IHDR chunk directly follows the signature: its size fields, CRC checked.
ImageHeader png_header(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size < 33) fail(name, "truncated PNG data");
  const uint8_t* chunk = bytes + 8;
  if (read_be32(chunk) != 13 || std::memcmp(chunk + 4, "IHDR", 4) != 0) {
    fail(name, "corrupt PNG (no IHDR chunk first)");
  }
  if (crc32(0, chunk + 4, 17) != read_be32(chunk + 21)) {
    fail(name, "corrupt PNG (CRC error in chunk IHDR)");
  }
  const uint32_t width = read_be32(chunk + 8);
  const uint32_t height = read_be32(chunk + 12);
  check_pixel_count(width, height, name);
  return {ImageFormat::kPng, static_cast<int>(width), static_cast<int>(height)};
}

ImageFormat detect_format(const uint8_t* bytes, size_t size, const std::string& name) {
  if (bytes != nullptr && is_jpeg(bytes, size)) return ImageFormat::kJpeg;
  if (bytes != nullptr && is_png(bytes, size)) return ImageFormat::kPng;
  fail(name, size == 0 ? "empty file, not a JPEG or PNG image" : "not a JPEG or PNG image");
}

}  // namespace

ImageHeader read_image_header(const uint8_t* bytes, size_t size, const std::string& name) {
  if (detect_format(bytes, size, name) == ImageFormat::kJpeg) return jpeg_header(bytes, size, name);
  return png_header(bytes, size, name);
}

int jpeg_reduction_for(int width, int height, int min_width, int min_height) {
  for (int f : {8, 4, 2}) {
    if ((width + f - 1) / f >= min_width && (height + f - 1) / f >= min_height) return f;
  }
  return 1;
}

Image decode_image(const uint8_t* bytes, size_t size, int channels, const std::string& name,
                   int jpeg_reduction) {
  check_arguments(channels, jpeg_reduction);
  if (detect_format(bytes, size, name) == ImageFormat::kJpeg) {
    return decode_jpeg(bytes, size, channels, name, jpeg_reduction);
  }
  return decode_png(bytes, size, channels, name);
}

Image decode_image_region(const uint8_t* bytes, size_t size, int channels, const std::string& name,
                          int jpeg_reduction, int left, int top, int width, int height) {
  check_arguments(channels, jpeg_reduction);
  const Rect rect{left, top, width, height};
  if (detect_format(bytes, size, name) == ImageFormat::kJpeg) {
    return decode_jpeg_region(bytes, size, channels, name, jpeg_reduction, rect);
  }
  Image whole = decode_png(bytes, size, channels, name);
  check_region(rect, whole.width, whole.height, name);
  Image image(width, height, channels);
  for (int y = 0; y < height; ++y) {
    std::memcpy(image.row(y), whole.row(top + y) + int64_t{left} * channels,
                static_cast<size_t>(image.row_bytes()));
  }
  return image;
}

}  // namespace dgqa
