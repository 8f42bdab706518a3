// What `dgqa bench` reports about the GPU it ran on: the device's name and size, the dense peak
// of its arithmetic for the backend's precision (the denominator of model FLOP utilisation), and
// the device memory in use. Plain C++ with no CUDA headers, so that cli/bench.cc can include
// it in CUDA builds (DGQA_WITH_CUDA) and stay free of CUDA itself.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/backend.h"

namespace dgqa::cuda {

struct DeviceInfo {
  std::string name;  // cudaDeviceProp::name, e.g. "NVIDIA H100 80GB HBM3"
  int major = 0;     // compute capability major.minor
  int minor = 0;
  int sm_count = 0;       // streaming multiprocessors
  double peak_flops = 0;  // dense_peak_flops for this device; 0 when it is not in the table
};

// The GPU of the CUDA context (the one the CUDA backend computes on; kernels/cuda/cuda_context.h),
// with its peak for precision.
DeviceInfo device_info(Precision precision);

// Bytes in use on that GPU: total minus free as cudaMemGetInfo reports them. This counts
// everything on the device: this process's buffers, its CUDA context and cuBLAS workspace, and
// the memory of any other process using the same GPU.
int64_t device_memory_in_use();

// The dense (no structured sparsity) peak FLOP/s of a device, from the table in device_info.cu,
// keyed by compute capability and name: kBF16 is the tensor cores' bf16 rate with fp32
// accumulation, kFP32 the plain fp32 rate (no TF32; our fp32 GEMMs do not use TF32). 0 for a
// device not in the table (`dgqa bench --peak-tflops` then supplies the figure). Needs no GPU.
double dense_peak_flops(const std::string& name, int major, int minor, Precision precision);

}  // namespace dgqa::cuda
