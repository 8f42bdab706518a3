// An array in one backend's memory, filled from a host vector and read back: how the tests
// that compare the CUDA backend with the CPU backend move their data.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "kernels/backend.h"

namespace dgqa::tests {

template <typename T>
class DeviceArray {
 public:
  DeviceArray(Backend& backend, const std::vector<T>& values)
      : backend_(backend),
        size_(values.size()),
        pointer_(static_cast<T*>(backend.allocate(bytes()))) {
    backend_.copy_to_device(pointer_, values.data(), bytes());
  }
  ~DeviceArray() { backend_.release(pointer_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return pointer_; }
  std::vector<T> to_host() const {
    std::vector<T> values(size_);
    backend_.copy_to_host(values.data(), pointer_, bytes());  // complete when it returns
    return values;
  }

 private:
  size_t bytes() const { return size_ * sizeof(T); }

  Backend& backend_;
  size_t size_;
  T* pointer_;
};

// Copies every host vector to a new buffer of backend, runs op on the buffers, and returns all
// of them copied back (inputs and outputs alike: a kernel must not change its inputs either).
using Op = std::function<void(Backend&, const std::vector<float*>&)>;
inline std::vector<std::vector<float>> run_on_backend(Backend& backend,
                                                      const std::vector<std::vector<float>>& host,
                                                      const Op& op) {
  std::vector<std::unique_ptr<DeviceArray<float>>> buffers;
  std::vector<float*> pointers;
  for (const auto& vector : host) {
    buffers.push_back(std::make_unique<DeviceArray<float>>(backend, vector));
    pointers.push_back(buffers.back()->get());
  }
  op(backend, pointers);
  std::vector<std::vector<float>> results;
  for (const auto& buffer : buffers) results.push_back(buffer->to_host());
  return results;
}

}  // namespace dgqa::tests
