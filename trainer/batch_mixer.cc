#include "trainer/batch_mixer.h"

#include <stdexcept>
#include <string>

namespace dgqa {

MixupSettings mixup_settings_from(const config::Config& config) {
  const config::Mixup& m = config.mixup();
  MixupSettings settings;
  settings.mixup_alpha = m.mixup_alpha();
  settings.cutmix_alpha = m.cutmix_alpha();
  settings.cutmix_minmax = m.cutmix_minmax_size() == 2;
  if (settings.cutmix_minmax) {
    settings.cutmix_min = m.cutmix_minmax(0);
    settings.cutmix_max = m.cutmix_minmax(1);
  }
  settings.prob = m.prob();
  settings.switch_prob = m.switch_prob();
  switch (m.mode()) {
    case config::BATCH:
      settings.mode = MixupMode::kBatch;
      break;
    case config::PAIR:
      settings.mode = MixupMode::kPair;
      break;
    case config::ELEM:
      settings.mode = MixupMode::kElem;
      break;
  }
  return settings;
}

BatchMixer::BatchMixer(const config::Config& config, Communicator& comm)
    : settings_(mixup_settings_from(config)),
      comm_(comm),
      seed_(config.seed()),
      global_batch_(config.train().global_batch_size()),
      channels_(model_config_from(config).in_channels),
      image_size_(model_config_from(config).image_size) {}

void BatchMixer::mix(const Batch& batch, int64_t step) {
  const int world = comm_.world_size(), rank = comm_.rank();
  if (batch.size * world != global_batch_) {
    throw std::logic_error("mixup: a training share of " + std::to_string(batch.size) +
                           " images is not train.global_batch_size / " + std::to_string(world));
  }
  images_ = batch.images;
  partner_images_.resize(images_.size());
  partner_labels_.resize(batch.size);
  const int partner = world - 1 - rank;
  comm_.send_receive(batch.images.data(), partner_images_.data(),
                     static_cast<int64_t>(sizeof(float) * images_.size()), partner,
                     "mixup image exchange");
  comm_.send_receive(batch.labels.data(), partner_labels_.data(),
                     static_cast<int64_t>(sizeof(int32_t) * batch.size), partner,
                     "mixup label exchange");
  const std::vector<MixDraw> draws =
      mixup_draws(settings_, seed_, step, global_batch_, image_size_);
  mix_labels_.resize(batch.size);
  mix_weights_.resize(batch.size);
  const MixupShare share{rank, world, global_batch_, channels_, image_size_};
  mix_share(draws, settings_.mode, share, images_.data(), partner_images_.data(),
            partner_labels_.data(), mix_labels_.data(), mix_weights_.data());
  dominant_labels_.resize(batch.size);
  for (int k = 0; k < batch.size; ++k) {
    dominant_labels_[k] = mix_weights_[k] >= 0.5f ? batch.labels[k] : mix_labels_[k];
  }
}

}  // namespace dgqa
