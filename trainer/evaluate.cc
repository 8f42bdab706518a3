#include "trainer/evaluate.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "trainer/comm_reducer.h"

namespace dgqa {

EvalResult evaluate(VisionTransformer& model, BatchLoader& loader, Communicator& comm, int64_t step,
                    std::vector<float>* logits) {
  CommReducer reducer(comm, "evaluation key-norm all-reduce");
  const int K = model.config().num_classes;
  ForwardContext context;
  context.training = false;
  context.step = step;
  double loss_sum = 0;
  int64_t correct = 0, examples = 0;
  std::vector<int64_t> row_examples;  // this rank's examples, and their logits (rows of K)
  std::vector<float> row_logits;

  loader.start_epoch(0);
  Batch batch;
  while (loader.next(&batch)) {
    // A rank without examples in this batch still runs it: it joins the key-norm sums.
    loss_sum +=
        model.forward(batch.images.data(), batch.labels.data(), batch.size, context, reducer);
    const std::vector<float> batch_logits = model.logits_to_host();
    for (int i = 0; i < batch.size; ++i) {
      const float* row = batch_logits.data() + static_cast<int64_t>(i) * K;
      int best = 0;
      for (int k = 1; k < K; ++k) {
        if (row[k] > row[best]) best = k;
      }
      correct += best == batch.labels[i];
    }
    examples += batch.size;
    if (logits != nullptr) {
      row_examples.insert(row_examples.end(), batch.examples.begin(), batch.examples.end());
      row_logits.insert(row_logits.end(), batch_logits.begin(),
                        batch_logits.begin() + static_cast<int64_t>(batch.size) * K);
    }
  }

  // Sum over ranks, so every rank reports the metrics of the whole split.
  float totals[3] = {static_cast<float>(loss_sum), static_cast<float>(correct),
                     static_cast<float>(examples)};
  comm.all_reduce_sum(totals, 3, "evaluation metrics all-reduce");
  EvalResult result;
  result.examples = static_cast<int64_t>(totals[2]);
  if (result.examples > 0) {
    result.loss = totals[0] / result.examples;
    result.top1 = totals[1] / result.examples;
  }
  if (logits != nullptr) {
    // x + 0 is x exactly: the sum puts every rank's rows in place, unchanged.
    logits->assign(static_cast<size_t>(result.examples) * K, 0.f);
    for (size_t row = 0; row < row_examples.size(); ++row) {
      const int64_t example = row_examples[row];
      if (example < 0 || example >= result.examples) {
        throw std::logic_error("evaluate: example " + std::to_string(example) + " of a split of " +
                               std::to_string(result.examples));
      }
      const auto first = row_logits.begin() + static_cast<int64_t>(row) * K;
      std::copy(first, first + K, logits->begin() + example * K);
    }
    comm.all_reduce_sum(logits->data(), static_cast<int64_t>(logits->size()),
                        "evaluation logits all-reduce");
  }
  return result;
}

}  // namespace dgqa
