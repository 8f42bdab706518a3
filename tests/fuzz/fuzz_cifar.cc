// Fuzz target: the CIFAR-10 and CIFAR-100 binary readers (data/cifar_reader.h).
//
// Input: one CIFAR data file, written as the test split of both variants (test_batch.bin and
// test.bin in a scratch data.root) and read with read_cifar10_dataset and read_cifar100_dataset.
// Asserts: each read ends with a dataset or an InputError naming data.root's file; a dataset
// has one 3x32x32 image and one label below the variant's class count per example.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/cifar_reader.h"
#include "tests/fuzz/fuzz_support.h"

namespace dgqa::fuzz {
namespace {

void check_dataset(const Dataset& dataset, int num_classes) {
  const size_t examples = static_cast<size_t>(dataset.num_examples);
  if (dataset.channels != 3 || dataset.height != 32 || dataset.width != 32 ||
      dataset.labels.size() != examples || dataset.pixels.size() != examples * 3 * 32 * 32) {
    finding("inconsistent CIFAR dataset of " + std::to_string(examples) + " examples");
  }
  for (int32_t label : dataset.labels) {
    if (label < 0 || label >= num_classes) finding("CIFAR label " + std::to_string(label));
  }
}

}  // namespace
}  // namespace dgqa::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dgqa::fuzz;
  const std::string cifar10 = write_scratch_file("test_batch.bin", data, size);
  const std::string cifar100 = write_scratch_file("test.bin", data, size);
  reads_or_refuses(cifar10, [&] {
    check_dataset(dgqa::read_cifar10_dataset(scratch_dir(), /*train=*/false), 10);
  });
  reads_or_refuses(cifar100, [&] {
    check_dataset(dgqa::read_cifar100_dataset(scratch_dir(), /*train=*/false), 100);
  });
  return 0;
}
