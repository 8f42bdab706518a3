// The examples of a JPEG/PNG dataset as the loader reads them: each example's file is read
// from its store and decoded, transformed and normalised by the image pipeline when it is
// needed, so memory holds batches, never the decoded dataset.
#pragma once

#include <memory>
#include <mutex>
#include <set>

#include "data/encoded_store.h"
#include "data/example_source.h"
#include "data/image_pipeline.h"

namespace dgqa {

enum class BadImagePolicy {
  kFail,  // an unreadable image ends the run with an error naming it
  // The next readable example of the split (in dataset order, wrapping) stands in for it,
  // image and label, with a warning the first time. Which example stands in depends only on
  // the split, so every rank and world size agrees. At most kMaxReplacementTries are tried.
  kSkip,
};

class EncodedImageSource : public ExampleSource {
 public:
  static constexpr int kMaxReplacementTries = 64;

  EncodedImageSource(std::unique_ptr<EncodedStore> store, const ImagePipelineOptions& pipeline,
                     BadImagePolicy bad_image);

  int64_t num_examples() const override { return store_->size(); }
  int64_t input_floats() const override { return pipeline_.output_floats(); }
  std::string description() const override { return store_->description(); }
  LoadedExample load(int64_t example, int64_t epoch, float* out) const override;

  const EncodedStore& store() const { return *store_; }

 private:
  void warn_once(int64_t example, const std::string& reason) const;

  std::unique_ptr<EncodedStore> store_;
  ImagePipeline pipeline_;
  BadImagePolicy bad_image_;
  mutable std::mutex warned_mutex_;
  mutable std::set<int64_t> warned_;  // examples already reported as unreadable
};

}  // namespace dgqa
