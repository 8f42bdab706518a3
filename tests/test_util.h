// Helpers shared by the test programs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dgqa::tests {

// A fresh empty directory under the system temp dir, unique to this call; removed with its contents
// when the process exits, unless a test failed or DGQA_KEEP_TEST_DIRS is set.
std::string make_temp_dir(const std::string& prefix);

// Deterministic pseudo-random floats in [lo, hi) (a small LCG: tests must not depend on libc).
std::vector<float> random_vector(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f);

// Runs a shell command, returns its exit status (-1 if it did not exit normally);
// stdout and stderr together are stored in *output when given.
int run_command(const std::string& command, std::string* output = nullptr);

// Writes bytes to a file (overwrites).
void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

// Runs `run`, which must throw InputError, and returns its message ("" and a test failure when
// it throws none).
std::string input_error_of(const std::function<void()>& run);

// Expects part in text; a failure shows both.
void expect_contains(const std::string& text, const std::string& part);

// Whether /usr/bin/python3 imports numpy (the tests that check files with numpy need it).
bool have_python_with_numpy();

// Whether /usr/bin/python3 imports every module of `modules` ("torchvision, PIL").
bool have_python_modules(const std::string& modules);

}  // namespace dgqa::tests
