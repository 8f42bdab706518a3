#include "data/encoded_source.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "common/error.h"

namespace dgqa {

EncodedImageSource::EncodedImageSource(std::unique_ptr<EncodedStore> store,
                                       const ImagePipelineOptions& pipeline,
                                       BadImagePolicy bad_image)
    : store_(std::move(store)), pipeline_(pipeline), bad_image_(bad_image) {}

LoadedExample EncodedImageSource::load(int64_t example, int64_t epoch, float* out) const {
  thread_local std::vector<uint8_t> bytes;  // a worker's file buffer, grown once, reused
  const int64_t n = store_->size();
  for (int tries = 0;; ++tries) {
    const int64_t candidate = (example + tries) % n;
    try {
      store_->read(candidate, &bytes);
      // The augmentation stays keyed by the example asked for.
      pipeline_.apply_encoded(bytes.data(), bytes.size(), store_->name(candidate), epoch, example,
                              out);
      return {store_->label(candidate), tries > 0};
    } catch (const InputError& error) {
      if (bad_image_ == BadImagePolicy::kFail) throw;
      warn_once(candidate, error.what());
      if (tries + 1 >= std::min<int64_t>(kMaxReplacementTries, n)) {
        throw InputError(store_->name(example) + ": unreadable, and so are the " +
                         std::to_string(tries) + " examples after it (data.bad_image: SKIP)");
      }
    }
  }
}

void EncodedImageSource::warn_once(int64_t example, const std::string& reason) const {
  {
    std::lock_guard<std::mutex> lock(warned_mutex_);
    if (!warned_.insert(example).second) return;
  }
  std::fprintf(stderr,
               "dgqa: warning: %s; the next readable example stands in for it "
               "(data.bad_image: SKIP)\n",
               reason.c_str());
}

}  // namespace dgqa
