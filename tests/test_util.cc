#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/error.h"

namespace dgqa::tests {

namespace {

// The folders make_temp_dir made in this process, removed when it exits unless a test failed (kept
// to look at) or DGQA_KEEP_TEST_DIRS is set. Some hold a whole dataset copy: left behind, the
// suite's runs would fill the temp dir.
std::vector<std::string>& temp_dirs_made() {
  static std::vector<std::string> dirs;
  return dirs;
}

void remove_temp_dirs_at_exit() {
  const std::vector<std::string>& dirs = temp_dirs_made();
  if (::testing::UnitTest::GetInstance()->Failed() || std::getenv("DGQA_KEEP_TEST_DIRS")) {
    std::fprintf(stderr, "kept the %zu temporary folder(s) of this test run, e.g. %s\n",
                 dirs.size(), dirs.front().c_str());
    return;
  }
  for (const std::string& dir : dirs) {
    std::error_code ignored;  // a folder a test removed itself is fine
    std::filesystem::remove_all(dir, ignored);
  }
}

}  // namespace

std::string make_temp_dir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp ? tmp : "/tmp") + "/" + prefix + "XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + pattern);
  if (temp_dirs_made().empty()) std::atexit(remove_temp_dirs_at_exit);
  temp_dirs_made().emplace_back(buffer.data());
  return std::string(buffer.data());
}

std::vector<float> random_vector(size_t n, uint32_t seed, float lo, float hi) {
  std::vector<float> values(n);
  uint64_t state = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  for (size_t i = 0; i < n; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    float unit = static_cast<float>(state >> 40) / static_cast<float>(1ULL << 24);
    values[i] = lo + (hi - lo) * unit;
  }
  return values;
}

int run_command(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  std::array<char, 4096> chunk;
  std::string text;
  size_t n;
  while ((n = fread(chunk.data(), 1, chunk.size(), pipe)) > 0) text.append(chunk.data(), n);
  int status = pclose(pipe);
  if (output != nullptr) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string input_error_of(const std::function<void()>& run) {
  try {
    run();
  } catch (const InputError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no InputError was thrown";
  return "";
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' is not in: " << text;
}

bool have_python_with_numpy() {
  return have_python_modules("numpy");
}

bool have_python_modules(const std::string& modules) {
  return run_command("/usr/bin/python3 -c 'import " + modules + "'") == 0;
}

}  // namespace dgqa::tests
