// Batches jobs for tests/pil_transform_oracle.py (PIL 9.4 / torchvision 0.14 under
// /usr/bin/python3): a test queues images and operations, runs the oracle once, then reads what
// PIL made of each. Header-only; used by the resample, crop geometry and RandAugment tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "data/image.h"
#include "tests/test_util.h"

namespace dgqa::tests {

// Whether /usr/bin/python3 has PIL, torchvision, torch and numpy.
inline bool have_pil_oracle() {
  static const bool have =
      run_command("/usr/bin/python3 -c 'import PIL, torchvision, torch, numpy' 2>/dev/null") == 0;
  return have;
}

// A deterministic image whose pixels mix smooth gradients with noise, so that filters see both
// flat areas and edges (and values near 0 and 255 that clip).
inline Image oracle_test_image(int width, int height, int channels, uint32_t seed) {
  Image image(width, height, channels);
  uint32_t state = seed * 2654435761u + 1;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        state = state * 1664525u + 1013904223u;
        const int noise = static_cast<int>(state >> 24) - 128;
        const int smooth = (x * 7 + y * 3 + c * 50) % 256;
        const int v = (seed % 3 == 0) ? static_cast<int>(state >> 24) : smooth + noise / 4;
        image.at(y, x, c) = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
      }
    }
  }
  return image;
}

class OracleBatch {
 public:
  OracleBatch() : dir_(make_temp_dir("pil_oracle")) {}

  // Queues a job on `input`; returns its index for result(). `job` is the oracle line after
  // "KIND IN OUT W H C".
  int add_image_job(const std::string& kind, const Image& input, const std::string& args) {
    const int index = static_cast<int>(outputs_.size());
    const std::string in = dir_ + "/in" + std::to_string(index) + ".raw";
    const std::string out = dir_ + "/out" + std::to_string(index) + ".raw";
    write_file(in, std::string(input.pixels.begin(), input.pixels.end()));
    jobs_ += kind + " " + in + " " + out + " " + std::to_string(input.width) + " " +
             std::to_string(input.height) + " " + std::to_string(input.channels) + " " + args +
             "\n";
    outputs_.push_back(out);
    return index;
  }

  // Queues a job whose output is text ("KIND OUT args").
  int add_text_job(const std::string& kind, const std::string& args) {
    const int index = static_cast<int>(outputs_.size());
    const std::string out = dir_ + "/out" + std::to_string(index) + ".txt";
    jobs_ += kind + " " + out + " " + args + "\n";
    outputs_.push_back(out);
    return index;
  }

  // Runs every queued job; false (with a test failure) when the oracle fails.
  bool run() {
    write_file(dir_ + "/jobs.txt", jobs_);
    std::string log;
    const int status = run_command("/usr/bin/python3 " + std::string(DGQA_SOURCE_DIR) +
                                       "/tests/pil_transform_oracle.py " + dir_ + "/jobs.txt",
                                   &log);
    EXPECT_EQ(status, 0) << log;
    return status == 0;
  }

  std::string text(int index) const { return read_file(outputs_[index]); }

  // The oracle's image for job `index`, which has the given size.
  Image image(int index, int width, int height, int channels) const {
    Image out(width, height, channels);
    const std::string bytes = read_file(outputs_[index]);
    EXPECT_EQ(bytes.size(), out.pixels.size()) << "job " << index;
    std::copy(bytes.begin(), bytes.begin() + std::min(bytes.size(), out.pixels.size()),
              out.pixels.begin());
    return out;
  }

 private:
  std::string dir_;
  std::string jobs_;
  std::vector<std::string> outputs_;
};

// The number of bytes where a and b differ (sizes must match), with the first few reported.
inline int64_t count_differences(const Image& a, const Image& b, const std::string& what) {
  EXPECT_EQ(a.width, b.width) << what;
  EXPECT_EQ(a.height, b.height) << what;
  EXPECT_EQ(a.channels, b.channels) << what;
  if (a.pixels.size() != b.pixels.size()) return -1;
  int64_t differ = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    if (a.pixels[i] == b.pixels[i]) continue;
    if (differ++ < 3) {
      const size_t pixel = i / a.channels;
      ADD_FAILURE() << what << ": byte " << i << " (x " << pixel % a.width << ", y "
                    << pixel / a.width << ") is " << int{a.pixels[i]} << ", PIL has "
                    << int{b.pixels[i]};
    }
  }
  return differ;
}

}  // namespace dgqa::tests
