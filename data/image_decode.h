// Decodes JPEG (libjpeg-turbo) and PNG (libpng) files into the pipeline's 8-bit images with
// the colour conversions of PIL: what Image.open(path).convert("RGB") (or "L") gives, pixel
// for pixel, so that pretrained weights see the inputs they were trained on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "data/image.h"

namespace dgqa {

enum class ImageFormat { kJpeg, kPng };

struct ImageHeader {
  ImageFormat format;
  int width;
  int height;
};

// The format and the stored size, read from the header only. Throws InputError naming `name`
// for bytes that are neither a JPEG nor a PNG, or whose header is cut short or invalid.
ImageHeader read_image_header(const uint8_t* bytes, size_t size, const std::string& name);

// The largest factor f in {1, 2, 4, 8} by which a width x height JPEG can be shrunk while it is
// decoded (DCT-domain scaling) and keep ceil(width / f) >= min_width and
// ceil(height / f) >= min_height. 1 when the target is larger than half the stored size.
int jpeg_reduction_for(int width, int height, int min_width, int min_height);

// Decodes `bytes`, named `name` in errors, into `channels` = 3 as PIL's convert("RGB") or 1 as
// its convert("L") makes them, from any stored mode: gray, RGB, CMYK and YCCK JPEG; gray,
// gray + alpha, RGB, RGBA, palette (with or without transparency), 1/2/4/16-bit PNG. Alpha is
// dropped, not composited, as PIL does. A JPEG is shrunk by `jpeg_reduction` (1, 2, 4 or 8) in
// the DCT domain as PIL's draft() with that scale, to ceil(width / f) x ceil(height / f):
// im.draft("RGB", (w // f, h // f)) then convert (draft with ceil(w / f) can pick a smaller
// scale; and draft("L") would take libjpeg's luma, not convert("L")'s, so channels = 1 is
// convert("L") of the RGB decode at every reduction). A PNG is always decoded whole. Throws
// InputError naming `name` for data that is not a complete, valid JPEG or PNG (a truncated
// JPEG, one without EOI, or a PNG chunk with a bad CRC included) and for images over 2^28
// pixels; never crashes on hostile bytes. std::invalid_argument for channels or
// jpeg_reduction out of range. Thread-safe: nothing is shared between calls.
Image decode_image(const uint8_t* bytes, size_t size, int channels, const std::string& name,
                   int jpeg_reduction = 1);

// The pixels decode_image(bytes, size, channels, name, jpeg_reduction) would hold in the
// rectangle [left, left + width) x [top, top + height) (coordinates in the shrunk image, the
// rectangle inside it, else InputError), identical to cropping the full decode; a JPEG decodes
// only the rows and the iMCU columns it needs (plus an iMCU of margin), so damage below the
// rectangle's last row goes unnoticed where decode_image would throw. A PNG is decoded whole.
Image decode_image_region(const uint8_t* bytes, size_t size, int channels, const std::string& name,
                          int jpeg_reduction, int left, int top, int width, int height);

}  // namespace dgqa
