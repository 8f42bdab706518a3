// What the libFuzzer targets of tests/fuzz share (docs/maintaining.md, "Fuzzing").
//
// A target feeds the bytes libFuzzer gives it to one of dgqa's readers. The readers' contract
// for bad input is an InputError whose message names the file (or field) at fault, so:
//   - the reader returns, or throws an InputError naming what it was told to read: accepted;
//   - an InputError that does not name it: a finding (finding() reports it and aborts);
//   - any other exception (std::bad_alloc, std::logic_error, a plain std::runtime_error...)
//     leaves the target, std::terminate aborts: a finding;
//   - a crash, a sanitizer report, a leak, an allocation beyond -malloc_limit_mb or an input
//     slower than -timeout: a finding, reported by libFuzzer and the sanitizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "common/error.h"

namespace dgqa::fuzz {

// Reports a broken promise of the code under test on stderr ("fuzz finding: ...") and aborts,
// which libFuzzer records as a crash with its input.
[[noreturn]] void finding(const std::string& what);

// This process's scratch directory (under $TMPDIR, else /tmp), created on first use and
// removed when the process exits normally.
const std::string& scratch_dir();

// Writes the bytes to scratch_dir()/name, replacing the file; returns its path.
std::string write_scratch_file(const std::string& name, const uint8_t* data, size_t size);
std::string write_scratch_file(const std::string& name, const std::string& bytes);

// A finding unless the error message contains one of `names`.
void require_named(const std::string& message, std::initializer_list<std::string> names);

// Runs `read()`. Returns true when it returns, false when it throws an InputError whose
// message contains one of `named` (the paths or fields the reader was given); any other
// InputError is a finding, any other exception propagates.
template <typename Read>
bool reads_or_refuses(std::initializer_list<std::string> named, Read&& read) {
  try {
    read();
    return true;
  } catch (const InputError& error) {
    require_named(error.what(), named);
    return false;
  }
}

template <typename Read>
bool reads_or_refuses(const std::string& named, Read&& read) {
  return reads_or_refuses({named}, read);
}

}  // namespace dgqa::fuzz
