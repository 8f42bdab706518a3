#include "data/image_encode.h"

#include <png.h>

#include <stdexcept>

#include "common/atomic_file.h"

namespace dgqa {
namespace {

void append_to_vector(png_structp png, png_bytep data, png_size_t size) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  try {
    out->insert(out->end(), data, data + size);
  } catch (const std::bad_alloc&) {
    png_error(png, "out of memory");  // longjmps back to write_png (no C++ frames between)
  }
}

// libpng reports errors by longjmp to the setjmp here; no object with a destructor lives in
// this frame. Returns false on an error.
bool write_png(png_structp png, png_infop info, const Image& image, std::vector<uint8_t>* out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, out, append_to_vector, nullptr);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width),
               static_cast<png_uint_32>(image.height), 8,
               image.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < image.height; ++y) png_write_row(png, image.row(y));
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

std::vector<uint8_t> encode_png(const Image& image) {
  if (image.channels != 1 && image.channels != 3) {
    throw std::invalid_argument("encode_png: images of 1 or 3 channels only");
  }
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  std::vector<uint8_t> out;
  const bool written = info != nullptr && write_png(png, info, image, &out);
  png_destroy_write_struct(&png, &info);
  if (!written) throw std::runtime_error("PNG encoder failed (out of memory?)");
  return out;
}

void write_png_file(const std::string& path, const Image& image) {
  const std::vector<uint8_t> bytes = encode_png(image);
  AtomicFileWriter file(path);
  file.append(bytes.data(), bytes.size());
  file.commit();
}

}  // namespace dgqa
