#include "tests/fuzz/fuzz_support.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

namespace dgqa::fuzz {

void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
  std::abort();
}

namespace {

void remove_scratch_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(scratch_dir(), ignored);
}

std::string make_scratch_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/dgqa-fuzz-" +
                        std::to_string(getpid()) + "-XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  if (mkdtemp(name.data()) == nullptr) finding("cannot create a scratch directory " + pattern);
  return name.data();
}

}  // namespace

void require_named(const std::string& message, std::initializer_list<std::string> names) {
  std::string listed;
  for (const std::string& name : names) {
    if (message.find(name) != std::string::npos) return;
    listed += (listed.empty() ? "" : " or ") + name;
  }
  finding("the InputError \"" + message + "\" does not name " + listed);
}

const std::string& scratch_dir() {
  static const std::string dir = make_scratch_dir();
  // Registered after dir is made, so run before dir's destructor.
  static const int removal_registered = std::atexit(remove_scratch_dir);
  (void)removal_registered;
  return dir;
}

std::string write_scratch_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) finding("cannot write the scratch file " + path);
  return path;
}

std::string write_scratch_file(const std::string& name, const std::string& bytes) {
  return write_scratch_file(name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace dgqa::fuzz
