// The GPU's name, size, peak and memory in use, for `dgqa bench` (see device_info.h).
#include "kernels/cuda/device_info.h"

#include <cctype>

#include "kernels/cuda/cuda_context.h"

namespace dgqa::cuda {

namespace {

// Dense peaks in TFLOP/s, from NVIDIA's datasheets (the H100 Tensor Core GPU datasheet, the H200
// Tensor Core GPU datasheet and the A100 Tensor Core GPU datasheet). The datasheets give the
// tensor-core rates with 2:4 structured sparsity; the dense rate, which a training step can reach,
// is half of that (H100 SXM: 1,979 with sparsity -> 989 dense). FP32 is the plain (non-tensor,
// non-TF32) rate.
//
//   device             compute capability   bf16 dense   fp32
//   H100 SXM5          9.0                  989          67
//   H100 PCIe          9.0                  756          51
//   H200 SXM           9.0                  989          67    (the H100 SXM's compute figures)
//   A100 (SXM, PCIe)   8.0                  312          19.5
//
// A device is matched by its compute capability and a part of its (lower-cased) name, a word that
// starts after a space ("NVIDIA H100 80GB HBM3"); the first matching row wins. H100 NVL and H200
// NVL have other clocks and are left out (unknown), as is every other device (GH200 included):
// no figure is better than a wrong one.
struct PeakRow {
  int major, minor;
  const char* name_has;    // lower case, with the space before it
  const char* name_lacks;  // lower case; nullptr: no condition
  double bf16_tflops, fp32_tflops;
};

constexpr PeakRow kPeaks[] = {
    {9, 0, " h100 pcie", nullptr, 756, 51},  // "NVIDIA H100 PCIe"
    {9, 0, " h100", "nvl", 989, 67},         // SXM5: "NVIDIA H100 80GB HBM3"
    {9, 0, " h200", "nvl", 989, 67},         // "NVIDIA H200"
    {8, 0, " a100", nullptr, 312, 19.5},     // "NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe"
};

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace

double dense_peak_flops(const std::string& name, int major, int minor, Precision precision) {
  const std::string lowered = lower(name);
  for (const PeakRow& row : kPeaks) {
    if (row.major != major || row.minor != minor) continue;
    if (lowered.find(row.name_has) == std::string::npos) continue;
    if (row.name_lacks != nullptr && lowered.find(row.name_lacks) != std::string::npos) continue;
    return 1e12 * (precision == Precision::kBF16 ? row.bf16_tflops : row.fp32_tflops);
  }
  return 0;
}

DeviceInfo device_info(Precision precision) {
  cudaDeviceProp properties{};
  DGQA_CUDA_CHECK(cudaGetDeviceProperties(&properties, context().device));
  DeviceInfo info;
  info.name = properties.name;
  info.major = properties.major;
  info.minor = properties.minor;
  info.sm_count = properties.multiProcessorCount;
  info.peak_flops = dense_peak_flops(info.name, info.major, info.minor, precision);
  return info;
}

int64_t device_memory_in_use() {
  DGQA_CUDA_CHECK(cudaSetDevice(context().device));
  size_t free_bytes = 0, total_bytes = 0;
  DGQA_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return static_cast<int64_t>(total_bytes - free_bytes);
}

}  // namespace dgqa::cuda
