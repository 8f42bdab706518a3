// Checks that a dataset's labels fit the classifier that will train or evaluate on it.
#pragma once

#include "data/dataset.h"

namespace dgqa {

// Throws InputError naming dataset.label_source, the first offending label and its example
// index when a label is >= num_classes (the model's head size).
void check_labels_fit(const Dataset& dataset, int num_classes);

}  // namespace dgqa
