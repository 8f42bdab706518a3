// Fuzz target: the JPEG and PNG decoders (data/image_decode.h).
//
// Input: 5 bytes that choose the decode, then the image file.
//   byte 0: bit 0 set: 1 channel (convert("L")), else 3 (RGB); bits 1-2: the JPEG reduction
//           1, 2, 4 or 8;
//   bytes 1-4: the region's left, top, width and height, as fractions (/256) of the decoded
//           size, kept inside it.
// The file is decoded with read_image_header, decode_image and decode_image_region. A PNG is
// decoded a second time with every chunk's CRC recomputed, so that mutations also get past
// libpng's CRC checks to its decoder.
// Asserts: each call returns or throws an InputError naming the image; a file whose header is
// refused is not decoded either; a decoded image has the header's size (JPEG: divided by the
// reduction, rounded up) and the channels asked for; where the whole image decodes, the region
// decodes too, to exactly that rectangle of the whole image.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "data/image_decode.h"
#include "tests/fuzz/fuzz_support.h"

namespace dgqa::fuzz {
namespace {

constexpr char kName[] = "fuzz-image";
constexpr size_t kOptionBytes = 5;

struct DecodeOptions {
  int channels;
  int reduction;
  uint8_t left, top, width, height;  // fractions of the decoded size, /256
};

// A coordinate in [0, extent) from a fraction of 256.
int scaled(uint8_t fraction, int extent) {
  return static_cast<int>(int64_t{fraction} * extent / 256);
}

Image crop(const Image& image, int left, int top, int width, int height) {
  Image cropped(width, height, image.channels);
  for (int y = 0; y < height; ++y) {
    std::memcpy(cropped.row(y), image.row(top + y) + int64_t{left} * image.channels,
                static_cast<size_t>(cropped.row_bytes()));
  }
  return cropped;
}

void decode_and_check(const uint8_t* file, size_t size, const DecodeOptions& options) {
  ImageHeader header{};
  const bool header_read =
      reads_or_refuses(kName, [&] { header = read_image_header(file, size, kName); });
  Image whole;
  const bool decoded = reads_or_refuses(
      kName, [&] { whole = decode_image(file, size, options.channels, kName, options.reduction); });
  if (!header_read) {
    if (decoded) finding("decode_image decoded a file whose header read_image_header refuses");
    return;
  }
  const int f = header.format == ImageFormat::kJpeg ? options.reduction : 1;
  const int width = (header.width + f - 1) / f, height = (header.height + f - 1) / f;
  if (decoded &&
      (whole.width != width || whole.height != height || whole.channels != options.channels ||
       whole.pixels.size() != static_cast<size_t>(width) * height * whole.channels)) {
    finding("decode_image gave " + std::to_string(whole.width) + "x" +
            std::to_string(whole.height) + "x" + std::to_string(whole.channels) + " for a " +
            std::to_string(width) + "x" + std::to_string(height) + " image");
  }

  const int left = scaled(options.left, width), top = scaled(options.top, height);
  const int region_width = 1 + scaled(options.width, width - left);
  const int region_height = 1 + scaled(options.height, height - top);
  Image region;
  const bool region_decoded = reads_or_refuses(kName, [&] {
    region = decode_image_region(file, size, options.channels, kName, options.reduction, left, top,
                                 region_width, region_height);
  });
  if (!decoded) return;
  if (!region_decoded) finding("decode_image_region refused a region of a decodable image");
  const Image expected = crop(whole, left, top, region_width, region_height);
  if (region.width != expected.width || region.height != expected.height ||
      region.channels != expected.channels || region.pixels != expected.pixels) {
    finding("decode_image_region differs from the crop of decode_image");
  }
}

// The PNG with the CRC of every whole chunk (length, type, data, CRC) recomputed.
std::vector<uint8_t> with_png_crcs_fixed(const uint8_t* file, size_t size) {
  std::vector<uint8_t> png(file, file + size);
  size_t at = 8;  // after the signature
  while (size - at >= 12) {
    const uint8_t* chunk = png.data() + at;
    const size_t length =
        size_t{chunk[0]} << 24 | size_t{chunk[1]} << 16 | size_t{chunk[2]} << 8 | size_t{chunk[3]};
    if (length > size - at - 12) break;
    const uint32_t crc = static_cast<uint32_t>(crc32(0, chunk + 4, static_cast<uInt>(length + 4)));
    uint8_t* stored = png.data() + at + 8 + length;
    for (int i = 0; i < 4; ++i) stored[i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
    at += 12 + length;
  }
  return png;
}

}  // namespace
}  // namespace dgqa::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dgqa::fuzz;
  if (size < kOptionBytes) return 0;
  const DecodeOptions options{
      (data[0] & 1) != 0 ? 1 : 3, 1 << ((data[0] >> 1) & 3), data[1], data[2], data[3], data[4]};
  const uint8_t* file = data + kOptionBytes;
  const size_t file_size = size - kOptionBytes;
  decode_and_check(file, file_size, options);
  const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (file_size >= 8 && std::memcmp(file, kPngSignature, 8) == 0) {
    const std::vector<uint8_t> fixed = with_png_crcs_fixed(file, file_size);
    if (std::memcmp(fixed.data(), file, file_size) != 0) {
      decode_and_check(fixed.data(), fixed.size(), options);
    }
  }
  return 0;
}
