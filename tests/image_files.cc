#include "tests/image_files.h"

#include <algorithm>
#include <cstdlib>

namespace dgqa::tests {

// Smooth gradients plus noise, `components` bytes per pixel.
std::vector<uint8_t> test_pixels(int width, int height, int components, uint64_t seed) {
  Lcg lcg(seed);
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * components);
  size_t i = 0;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < components; ++c) {
        int v = (x * (3 + c) + y * (5 - c) + c * 60) % 256 + lcg.below(41) - 20;
        pixels[i++] = static_cast<uint8_t>(std::min(255, std::max(0, v)));
      }
    }
  }
  return pixels;
}

std::string encode_jpeg(int width, int height, uint64_t seed, const JpegOptions& options) {
  const int components = options.input == JCS_GRAYSCALE ? 1 : options.input == JCS_CMYK ? 4 : 3;
  std::vector<uint8_t> pixels = test_pixels(width, height, components, seed);
  jpeg_compress_struct cinfo;
  jpeg_error_mgr error;
  cinfo.err = jpeg_std_error(&error);
  jpeg_create_compress(&cinfo);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &out, &size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = components;
  cinfo.in_color_space = options.input;
  jpeg_set_defaults(&cinfo);
  jpeg_set_colorspace(&cinfo, options.stored);
  jpeg_set_quality(&cinfo, options.quality, TRUE);
  if (components > 1) {
    cinfo.comp_info[0].h_samp_factor = options.h_samp;
    cinfo.comp_info[0].v_samp_factor = options.v_samp;
  }
  if (options.progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = pixels.data() + size_t{cinfo.next_scanline} * width * components;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string bytes(reinterpret_cast<char*>(out), size);
  jpeg_destroy_compress(&cinfo);
  std::free(out);
  return bytes;
}

}  // namespace dgqa::tests
