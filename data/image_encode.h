// Encodes 8-bit images as PNG (libpng): what `dgqa pack` writes for stored datasets and
// `dgqa dump-data --grid` for its contact sheet.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace dgqa {

// A lossless PNG of `image` (gray for 1 channel, RGB for 3).
std::vector<uint8_t> encode_png(const Image& image);

// Writes encode_png(image) to `path` atomically; std::runtime_error naming the path on failure.
void write_png_file(const std::string& path, const Image& image);

}  // namespace dgqa
