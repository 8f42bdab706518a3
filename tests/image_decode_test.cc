// data/image_decode.h: bit-exact agreement with PIL 9.4 (tests/pil_decode_oracle.py writes the
// images and PIL's decodes), region decodes equal to crops of full decodes, clean InputErrors
// for broken files and for a few hundred deterministic mutations of valid ones.
#include "data/image_decode.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

// After <cstdio>: jpeglib.h needs FILE and size_t.
#include <jpeglib.h>
#include <zlib.h>

#include "common/error.h"
#include "tests/image_files.h"
#include "tests/test_util.h"

namespace dgqa::tests {
namespace {

const char kOracle[] = DGQA_SOURCE_DIR "/tests/pil_decode_oracle.py";

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
  std::string body = type + data;
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  return be32(static_cast<uint32_t>(data.size())) + body + be32(static_cast<uint32_t>(crc));
}

std::string png_ihdr(uint32_t width, uint32_t height, int depth, int color_type) {
  return png_chunk("IHDR", be32(width) + be32(height) + static_cast<char>(depth) +
                               static_cast<char>(color_type) + std::string(3, '\0'));
}

// An 8-bit RGB PNG (colour type 2), or palette (3) indices; `extra` chunks before IDAT.
std::string encode_png(int width, int height, int color_type, uint64_t seed,
                       const std::string& extra = "") {
  const int components = color_type == 2 ? 3 : 1;
  std::vector<uint8_t> pixels = test_pixels(width, height, components, seed);
  std::string raw;
  for (int y = 0; y < height; ++y) {
    raw += static_cast<char>(y % 5);  // every PNG filter type
    raw.append(
        reinterpret_cast<const char*>(pixels.data()) + static_cast<size_t>(y) * width * components,
        static_cast<size_t>(width) * components);
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::string packed(packed_size, '\0');
  compress(reinterpret_cast<Bytef*>(&packed[0]), &packed_size,
           reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()));
  packed.resize(packed_size);
  std::string palette;
  for (int i = 0; i < 256 * 3; ++i) palette += static_cast<char>(i * 7);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_ihdr(width, height, 8, color_type) + extra +
         (color_type == 3 ? png_chunk("PLTE", palette) : "") + png_chunk("IDAT", packed) +
         png_chunk("IEND", "");
}

const uint8_t* data_of(const std::string& bytes) {
  return reinterpret_cast<const uint8_t*>(bytes.data());
}

Image decode(const std::string& bytes, int channels, int reduction = 1,
             const std::string& name = "test") {
  return decode_image(data_of(bytes), bytes.size(), channels, name, reduction);
}

Image crop(const Image& image, int left, int top, int width, int height) {
  Image out(width, height, image.channels);
  for (int y = 0; y < height; ++y) {
    std::memcpy(out.row(y), image.row(top + y) + int64_t{left} * image.channels, out.row_bytes());
  }
  return out;
}

// "" when equal, else where they first differ and how many bytes do.
std::string difference(const Image& got, const Image& want) {
  if (got.width != want.width || got.height != want.height || got.channels != want.channels) {
    return "size " + std::to_string(got.width) + "x" + std::to_string(got.height) + "x" +
           std::to_string(got.channels) + " != " + std::to_string(want.width) + "x" +
           std::to_string(want.height) + "x" + std::to_string(want.channels);
  }
  size_t differing = 0, first = 0;
  for (size_t i = 0; i < got.pixels.size(); ++i) {
    if (got.pixels[i] != want.pixels[i] && differing++ == 0) first = i;
  }
  if (differing == 0) return "";
  const size_t pixel = first / want.channels;
  return std::to_string(differing) +
         " bytes differ, first at x=" + std::to_string(pixel % want.width) +
         " y=" + std::to_string(pixel / want.width) +
         " c=" + std::to_string(first % want.channels) + ": " + std::to_string(got.pixels[first]) +
         " != " + std::to_string(want.pixels[first]);
}

// ---- against PIL ----

class PilOracle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (run_command("/usr/bin/python3 -c 'import numpy, PIL'") != 0) return;
    dir_ = new std::string(make_temp_dir("dgqa_decode_"));
    // YCCK (Adobe transform 2): PIL cannot write it, libjpeg can.
    JpegOptions ycck;
    ycck.input = JCS_CMYK;
    ycck.stored = JCS_YCCK;
    const int sizes[][2] = {{1, 1}, {17, 9}, {61, 47}, {203, 157}};
    for (const auto& size : sizes) {
      write_file(
          *dir_ + "/ycck_" + std::to_string(size[0]) + "x" + std::to_string(size[1]) + ".jpg",
          encode_jpeg(size[0], size[1], 11, ycck));
    }
    std::string output;
    const std::string python = std::string("/usr/bin/python3 -W ignore ") + kOracle;
    ready_ = run_command(python + " generate " + *dir_, &output) == 0 &&
             run_command(python + " decode " + *dir_, &output) == 0;
    if (!ready_) std::fprintf(stderr, "pil_decode_oracle.py failed:\n%s\n", output.c_str());
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) run_command("rm -rf '" + *dir_ + "'");
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (dir_ == nullptr) GTEST_SKIP() << "/usr/bin/python3 lacks numpy or PIL";
    ASSERT_TRUE(ready_) << "the PIL oracle failed";
  }
  static std::string file(const std::string& name) { return read_file(*dir_ + "/" + name); }
  // The files PIL decodes (all but the truncated *_noeoi ones).
  static std::vector<std::string> image_files() {
    std::string listing;
    run_command("ls '" + *dir_ + "' | grep -E '\\.(jpg|png)$' | grep -v noeoi", &listing);
    std::istringstream lines(listing);
    std::vector<std::string> names;
    for (std::string name; std::getline(lines, name);) names.push_back(name);
    return names;
  }

  static std::string* dir_;
  static bool ready_;
};

std::string* PilOracle::dir_ = nullptr;
bool PilOracle::ready_ = false;

TEST_F(PilOracle, EveryModeBitExact) {
  std::ifstream expected(*dir_ + "/expected.txt");
  int compared = 0, errors = 0;
  for (std::string line; std::getline(expected, line);) {
    std::istringstream fields(line);
    std::string name, width_or_error;
    int channels = 0, reduction = 0;
    fields >> name >> channels >> reduction >> width_or_error;
    const std::string bytes = file(name);
    if (width_or_error == "error") {
      ++errors;
      std::string message = input_error_of([&] { decode(bytes, channels, reduction, name); });
      EXPECT_EQ(message.rfind(name + ": ", 0), 0u) << line << ": " << message;
      continue;
    }
    Image want(std::stoi(width_or_error), 0, channels);
    fields >> want.height;
    std::string raw = file("out/" + name + ".c" + std::to_string(channels) + ".r" +
                           std::to_string(reduction) + ".raw");
    want.pixels.assign(raw.begin(), raw.end());
    ASSERT_EQ(want.pixels.size(), size_t(want.width) * want.height * channels) << line;
    Image got;
    try {
      got = decode(bytes, channels, reduction, name);
    } catch (const std::exception& e) {
      ADD_FAILURE() << line << ": " << e.what();
      continue;
    }
    EXPECT_EQ(difference(got, want), "")
        << name << " channels " << channels << " reduction " << reduction;
    ++compared;
  }
  EXPECT_GT(compared, 700);
  EXPECT_EQ(errors, 16);  // the *_noeoi files, every decode: PIL calls them truncated
}

TEST_F(PilOracle, HeaderGivesStoredSize) {
  for (const std::string& name : image_files()) {
    const std::string bytes = file(name);
    ImageHeader header = read_image_header(data_of(bytes), bytes.size(), name);
    Image image = decode(bytes, 1);
    EXPECT_EQ(header.width, image.width) << name;
    EXPECT_EQ(header.height, image.height) << name;
    EXPECT_EQ(header.format, name.back() == 'g' && name[name.size() - 2] == 'p' ? ImageFormat::kJpeg
                                                                                : ImageFormat::kPng)
        << name;
  }
}

// Random rectangles (and the corners, the edges, the whole image) of every JPEG kind at every
// reduction: the region decode equals the crop of the full decode.
TEST_F(PilOracle, RegionEqualsCropOfFullDecode) {
  Lcg lcg(7);
  int regions = 0;
  for (const std::string& name : image_files()) {
    const std::string bytes = file(name);
    const bool jpeg = name.size() > 4 && name.compare(name.size() - 4, 4, ".jpg") == 0;
    for (int reduction : {1, 2, 4, 8}) {
      if (!jpeg && reduction > 1) break;
      for (int channels : {3, 1}) {
        const Image full = decode(bytes, channels, reduction, name);
        const int w = full.width, h = full.height;
        std::vector<std::array<int, 4>> rects = {
            {0, 0, w, h}, {0, 0, 1, 1}, {w - 1, h - 1, 1, 1}, {w - 1, 0, 1, h}, {0, h - 1, w, 1}};
        for (int i = 0; i < (jpeg ? 12 : 2); ++i) {
          const int rw = 1 + lcg.below(w), rh = 1 + lcg.below(h);
          rects.push_back({lcg.below(w - rw + 1), lcg.below(h - rh + 1), rw, rh});
        }
        for (const auto& r : rects) {
          Image got = decode_image_region(data_of(bytes), bytes.size(), channels, name, reduction,
                                          r[0], r[1], r[2], r[3]);
          ASSERT_EQ(difference(got, crop(full, r[0], r[1], r[2], r[3])), "")
              << name << " reduction " << reduction << " channels " << channels << " rect " << r[0]
              << "," << r[1] << " " << r[2] << "x" << r[3];
          ++regions;
        }
      }
    }
  }
  EXPECT_GT(regions, 5000);
}

// ---- without PIL ----

// Region decodes of larger libjpeg-written JPEGs with every subsampling the format has.
TEST(ImageDecode, RegionOfEverySubsampling) {
  Lcg lcg(99);
  const int samplings[][2] = {{1, 1}, {2, 1}, {1, 2}, {2, 2}, {4, 1}, {4, 2}};
  for (const auto& s : samplings) {
    for (bool progressive : {false, true}) {
      JpegOptions options;
      options.h_samp = s[0];
      options.v_samp = s[1];
      options.progressive = progressive;
      const std::string bytes = encode_jpeg(301, 217, 5, options);
      for (int reduction : {1, 2, 4, 8}) {
        const Image full = decode(bytes, 3, reduction);
        for (int i = 0; i < 20; ++i) {
          const int rw = 1 + lcg.below(full.width), rh = 1 + lcg.below(full.height);
          const int left = lcg.below(full.width - rw + 1), top = lcg.below(full.height - rh + 1);
          Image got = decode_image_region(data_of(bytes), bytes.size(), 3, "test", reduction, left,
                                          top, rw, rh);
          ASSERT_EQ(difference(got, crop(full, left, top, rw, rh)), "")
              << s[0] << "x" << s[1] << " progressive " << progressive << " reduction " << reduction
              << " rect " << left << "," << top << " " << rw << "x" << rh;
        }
      }
    }
  }
}

TEST(ImageDecode, ReductionFor) {
  EXPECT_EQ(jpeg_reduction_for(500, 375, 224, 224), 1);  // 250 x 188 is too small
  EXPECT_EQ(jpeg_reduction_for(500, 448, 224, 224), 2);
  EXPECT_EQ(jpeg_reduction_for(1000, 900, 224, 224), 4);
  EXPECT_EQ(jpeg_reduction_for(1793, 1793, 224, 224), 8);  // ceil(1793 / 8) = 225
  EXPECT_EQ(jpeg_reduction_for(1785, 1785, 224, 224), 8);  // ceil(1785 / 8) = 224
  EXPECT_EQ(jpeg_reduction_for(1784, 1785, 224, 224), 4);  // 223 wide at 8
  EXPECT_EQ(jpeg_reduction_for(10, 10, 1, 1), 8);
  EXPECT_EQ(jpeg_reduction_for(10, 10, 20, 20), 1);
}

TEST(ImageDecode, ReducedSizesRoundUp) {
  const std::string bytes = encode_jpeg(61, 47, 3, JpegOptions{});
  for (int reduction : {1, 2, 4, 8}) {
    Image image = decode(bytes, 3, reduction);
    EXPECT_EQ(image.width, (61 + reduction - 1) / reduction);
    EXPECT_EQ(image.height, (47 + reduction - 1) / reduction);
  }
  const std::string png = encode_png(61, 47, 2, 3);
  EXPECT_EQ(decode(png, 3, 8).width, 61);  // a PNG ignores the reduction
}

TEST(ImageDecode, BadArgumentsAreCallerErrors) {
  const std::string bytes = encode_jpeg(8, 8, 3, JpegOptions{});
  EXPECT_THROW(decode(bytes, 2), std::invalid_argument);
  EXPECT_THROW(decode(bytes, 3, 3), std::invalid_argument);
  std::string message = input_error_of(
      [&] { decode_image_region(data_of(bytes), bytes.size(), 3, "x.jpg", 1, 4, 4, 5, 1); });
  expect_contains(message, "x.jpg: region 5x1+4+4 is not inside the 8x8 image");
}

// The offset of a PNG chunk's type field.
size_t chunk_at(const std::string& png, const std::string& type) {
  size_t at = png.find(type);
  EXPECT_NE(at, std::string::npos) << type;
  return at;
}

std::string error_of(const std::string& bytes, const std::string& name) {
  return input_error_of([&] { decode(bytes, 3, 1, name); });
}

TEST(ImageDecode, BrokenFilesNameThemselves) {
  const std::string jpeg = encode_jpeg(64, 48, 3, JpegOptions{});
  const std::string png = encode_png(40, 30, 2, 3);
  EXPECT_EQ(error_of("", "empty.jpg"), "empty.jpg: empty file, not a JPEG or PNG image");
  EXPECT_EQ(error_of("hello, world\n", "text.jpg"), "text.jpg: not a JPEG or PNG image");
  std::string noise;
  Lcg lcg(3);
  for (int i = 0; i < 1000; ++i) noise += static_cast<char>(lcg.next());
  EXPECT_EQ(error_of(noise, "noise.png"), "noise.png: not a JPEG or PNG image");
  EXPECT_EQ(error_of(jpeg.substr(0, jpeg.size() / 2), "half.jpg"), "half.jpg: truncated JPEG data");
  EXPECT_EQ(error_of(jpeg.substr(0, 3), "three.jpg"), "three.jpg: truncated JPEG data");
  JpegOptions progressive;
  progressive.progressive = true;
  const std::string prog = encode_jpeg(64, 48, 3, progressive);
  EXPECT_EQ(error_of(prog.substr(0, prog.size() * 2 / 3), "p.jpg"), "p.jpg: truncated JPEG data");
  // Region decodes stop reading early but still see truncation before their rows.
  EXPECT_EQ(input_error_of([&] {
              decode_image_region(data_of(jpeg), jpeg.size() / 3, 3, "r.jpg", 1, 0, 40, 64, 8);
            }),
            "r.jpg: truncated JPEG data");

  // A flipped bit in the CRC field itself; in the data, zlib usually sees the damage first.
  const size_t idat = chunk_at(png, "IDAT");
  const size_t idat_crc = png.size() - 12 - 4;  // IDAT's CRC, then the 12 bytes of IEND
  std::string bad_crc = png;
  bad_crc[idat_crc] ^= 1;
  EXPECT_EQ(error_of(bad_crc, "crc.png"), "crc.png: corrupt PNG (CRC error in chunk IDAT)");
  std::string bad_data = png;
  bad_data[idat + 4] ^= 1;
  expect_contains(error_of(bad_data, "data.png"), "data.png: corrupt PNG (");
  std::string text = encode_png(40, 30, 2, 3, png_chunk("tEXt", std::string("Title\0dgqa", 10)));
  text[chunk_at(text, "tEXt") + 6] ^= 1;
  EXPECT_EQ(error_of(text, "text.png"), "text.png: corrupt PNG (CRC error in chunk tEXt)");
  std::string gamma = encode_png(40, 30, 2, 3, png_chunk("gAMA", be32(45455)));
  gamma[chunk_at(gamma, "gAMA") + 5] ^= 1;
  EXPECT_EQ(error_of(gamma, "g.png"), "g.png: corrupt PNG (CRC error in chunk gAMA)");
  EXPECT_EQ(error_of(png.substr(0, idat + 20), "cut.png"), "cut.png: truncated PNG data");
  EXPECT_EQ(error_of(png.substr(0, png.size() - 12), "noend.png"), "noend.png: truncated PNG data");
  EXPECT_EQ(error_of(png.substr(0, 20), "head.png"), "head.png: truncated PNG data");
}

TEST(ImageDecode, HugeDimensionsAreRefusedCleanly) {
  // A 100000 x 100000 PNG header (valid CRC) and a JPEG whose SOF claims 20000 x 20000.
  std::string png = encode_png(4, 4, 2, 1);
  png.replace(8, 25, png_ihdr(100000, 100000, 8, 2));
  expect_contains(error_of(png, "big.png"), "big.png: image too large (100000x100000 pixels");
  std::string message =
      input_error_of([&] { read_image_header(data_of(png), png.size(), "big.png"); });
  expect_contains(message, "big.png: image too large");
  // The largest sizes a PNG header holds: their product does not fit in 64 bits.
  png.replace(8, 25, png_ihdr(0xFFFFFFFF, 0xFFFFFFFF, 8, 2));
  message = input_error_of([&] { read_image_header(data_of(png), png.size(), "huge.png"); });
  expect_contains(message, "huge.png: image too large (4294967295x4294967295 pixels");

  std::string jpeg = encode_jpeg(16, 16, 1, JpegOptions{});
  const size_t sof = jpeg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  jpeg[sof + 5] = jpeg[sof + 7] = static_cast<char>(20000 >> 8);
  jpeg[sof + 6] = jpeg[sof + 8] = static_cast<char>(20000 & 0xFF);
  expect_contains(error_of(jpeg, "big.jpg"), "big.jpg: image too large (20000x20000 pixels");
  jpeg[sof + 5] = jpeg[sof + 7] = static_cast<char>(0xFF);  // 65535+: libjpeg's own limit
  expect_contains(error_of(jpeg, "wide.jpg"), "wide.jpg: ");
}

// Bit flips, truncations, inserted and deleted byte runs of valid files: every decode either
// gives an image of the size its header declares or throws InputError.
TEST(ImageDecode, MutationsGiveImagesOrInputErrors) {
  JpegOptions progressive, gray;
  progressive.progressive = true;
  gray.input = JCS_GRAYSCALE;
  gray.stored = JCS_GRAYSCALE;
  const std::vector<std::string> originals = {
      encode_jpeg(45, 33, 1, JpegOptions{}), encode_jpeg(40, 24, 2, progressive),
      encode_jpeg(19, 23, 3, gray), encode_png(21, 13, 2, 4), encode_png(17, 9, 3, 5)};
  Lcg lcg(2024);
  int images = 0, errors = 0;
  for (int i = 0; i < 400; ++i) {
    std::string bytes = originals[i % originals.size()];
    switch (lcg.below(4)) {
      case 0:
        for (int k = 1 + lcg.below(4); k > 0; --k)
          bytes[lcg.below(bytes.size())] ^= 1 << lcg.below(8);
        break;
      case 1:
        bytes.resize(lcg.below(bytes.size()));
        break;
      case 2: {
        std::string run(1 + lcg.below(16), '\0');
        for (char& c : run) c = static_cast<char>(lcg.next());
        bytes.insert(lcg.below(bytes.size()), run);
        break;
      }
      default:
        bytes.erase(lcg.below(bytes.size()), 1 + lcg.below(16));
    }
    const std::string name = "mutant" + std::to_string(i);
    try {
      const ImageHeader header = read_image_header(data_of(bytes), bytes.size(), name);
      const int reduction = 1 << lcg.below(4);
      const Image image = decode(bytes, 1 + 2 * lcg.below(2), reduction, name);
      const int f = header.format == ImageFormat::kJpeg ? reduction : 1;
      EXPECT_EQ(image.width, (header.width + f - 1) / f) << name;
      EXPECT_EQ(image.height, (header.height + f - 1) / f) << name;
      EXPECT_EQ(image.pixels.size(), size_t(image.width) * image.height * image.channels);
      const int w = 1 + lcg.below(image.width), h = 1 + lcg.below(image.height);
      const Image region = decode_image_region(data_of(bytes), bytes.size(), 3, name, reduction,
                                               image.width - w, image.height - h, w, h);
      EXPECT_EQ(region.pixels.size(), size_t(w) * h * 3) << name;
      ++images;
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(name + ": ", 0), 0u) << e.what();
      ++errors;
    }
  }
  std::printf("%d mutants decoded, %d refused with InputError\n", images, errors);
  EXPECT_GT(images, 20);
  EXPECT_GT(errors, 100);
}

TEST(ImageDecode, ThreadsDecodeConcurrently) {
  const std::string jpeg = encode_jpeg(160, 120, 8, JpegOptions{});
  const std::string png = encode_png(160, 120, 2, 8);
  const Image jpeg_alone = decode(jpeg, 3), png_alone = decode(png, 1);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (decode(jpeg, 3).pixels != jpeg_alone.pixels) ++mismatches[t];
        if (decode(png, 1).pixels != png_alone.pixels) ++mismatches[t];
        try {
          decode(jpeg.substr(0, jpeg.size() / 2), 3);
        } catch (const InputError&) {
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// Not a limit, a number to watch: a typical ImageNet-sized JPEG.
TEST(ImageDecode, DecodeSpeed) {
  const std::string bytes = encode_jpeg(500, 375, 12, JpegOptions{});
  for (int reduction : {1, 2}) {
    decode(bytes, 3, reduction);
    const int runs = 40;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; ++i) decode(bytes, 3, reduction);
    std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    std::printf("500x375 q90 4:2:0 JPEG, reduction %d: %.3f ms per decode\n", reduction,
                took.count() / runs);
  }
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 40; ++i)
    decode_image_region(data_of(bytes), bytes.size(), 3, "t", 1, 100, 80, 224, 224);
  std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  std::printf("  224x224 region of it: %.3f ms per decode\n", took.count() / 40);
}

}  // namespace
}  // namespace dgqa::tests
