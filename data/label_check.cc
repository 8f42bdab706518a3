#include "data/label_check.h"

#include <string>

#include "common/error.h"

namespace dgqa {

void check_labels_fit(const Dataset& dataset, int num_classes) {
  for (int64_t i = 0; i < static_cast<int64_t>(dataset.labels.size()); ++i) {
    int32_t label = dataset.labels[i];
    if (label >= num_classes) {
      throw InputError(dataset.label_source + ": label " + std::to_string(label) + " of example " +
                       std::to_string(i) +
                       " does not fit model.num_classes = " + std::to_string(num_classes));
    }
  }
}

}  // namespace dgqa
