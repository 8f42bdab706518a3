#include "trainer/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace dgqa {

namespace {

// Losses are summed as integers in units of 2^-32, so the total is exact and does not depend
// on the order of the examples: the same images in another order, batching or world size give
// the same mean to the last bit (see EvalResult). 2^31 of total loss fits in an int64.
constexpr double kLossUnit = 4294967296.0;

// The cross-entropy of one row of logits, in double: the same for a row whatever batch it
// came in.
double row_loss(const float* row, int K, int label) {
  const float largest = *std::max_element(row, row + K);
  double sum = 0;
  for (int k = 0; k < K; ++k) sum += std::exp(static_cast<double>(row[k]) - largest);
  return std::log(sum) + largest - row[label];
}

// Adds a row's loss to the exact sum; counts it in `bad` instead when it is not finite or too
// large to sum exactly (logits that overflowed, NaN weights): the mean is then not finite.
void add_row_loss(double loss, int64_t* units, int64_t* bad) {
  constexpr double kMaxRowLoss = 1073741824.0;  // 2^30: loss * kLossUnit < 2^62
  long long sum = 0;
  if (!(std::fabs(loss) < kMaxRowLoss) ||
      __builtin_add_overflow(*units, std::llround(loss * kLossUnit), &sum)) {
    ++*bad;
    return;
  }
  *units = sum;
}

// One rank's (or, summed, every rank's) counts of some examples.
struct Tally {
  int64_t loss_units = 0, correct = 0, correct_top5 = 0, examples = 0, bad_losses = 0;

  Tally& operator+=(const Tally& other) {
    loss_units += other.loss_units;
    correct += other.correct;
    correct_top5 += other.correct_top5;
    examples += other.examples;
    bad_losses += other.bad_losses;
    return *this;
  }
  Tally summed_over_ranks(Communicator& comm) const {
    Tally sum;
    sum.examples = sum_over_ranks(comm, examples, "evaluation example count all-gather");
    sum.loss_units = sum_over_ranks(comm, loss_units, "evaluation loss all-gather");
    sum.correct = sum_over_ranks(comm, correct, "evaluation top-1 all-gather");
    sum.correct_top5 = sum_over_ranks(comm, correct_top5, "evaluation top-5 all-gather");
    sum.bad_losses = sum_over_ranks(comm, bad_losses, "evaluation non-finite loss all-gather");
    return sum;
  }
};

Tally tally_of(const float* logits, const int32_t* labels, int B, int K) {
  Tally tally;
  tally.correct = count_top_k(logits, labels, B, K, 1);
  tally.correct_top5 = count_top_k(logits, labels, B, K, 5);
  for (int i = 0; i < B; ++i) {
    const float* row = logits + static_cast<int64_t>(i) * K;
    add_row_loss(row_loss(row, K, labels[i]), &tally.loss_units, &tally.bad_losses);
  }
  tally.examples = B;
  return tally;
}

// The means over the examples of a tally summed over the ranks.
EvalResult means_of(const Tally& total) {
  EvalResult result;
  result.examples = total.examples;
  if (total.examples > 0) {
    result.loss = total.bad_losses > 0
                      ? std::numeric_limits<double>::quiet_NaN()
                      : static_cast<double>(total.loss_units) / kLossUnit / total.examples;
    result.top1 = static_cast<double>(total.correct) / total.examples;
    result.top5 = static_cast<double>(total.correct_top5) / total.examples;
  }
  return result;
}

// train.eval_average OVER_BATCHES: every (global) batch's means, averaged over the batches in
// order. Every rank runs the same number of batches (evaluate() below).
EvalResult mean_of_batch_means(const std::vector<Tally>& batches, Communicator& comm) {
  EvalResult result;
  for (const Tally& tally : batches) {
    const EvalResult batch = means_of(tally.summed_over_ranks(comm));
    result.loss += batch.loss;
    result.top1 += batch.top1;
    result.top5 += batch.top5;
    result.examples += batch.examples;
  }
  if (!batches.empty()) {
    const double count = static_cast<double>(batches.size());
    result.loss /= count;
    result.top1 /= count;
    result.top5 /= count;
  }
  return result;
}

}  // namespace

bool label_in_top_k(const float* row, int K, int label, int k) {
  const float own = row[label];
  int ahead = 0;  // classes ranked before the label
  for (int c = 0; c < K; ++c) ahead += row[c] > own || (row[c] == own && c < label);
  return ahead < k;
}

int64_t count_top_k(const float* logits, const int32_t* labels, int B, int K, int k) {
  int64_t count = 0;
  for (int i = 0; i < B; ++i) count += label_in_top_k(logits + int64_t{i} * K, K, labels[i], k);
  return count;
}

EvalResult evaluate(VisionTransformer& model, BatchLoader& loader, Communicator& comm,
                    Reducer& reducer, int64_t step, config::EvalAverage average,
                    std::vector<float>* logits) {
  const int K = model.config().num_classes;
  ForwardContext context;
  context.training = false;
  context.step = step;
  std::vector<Tally> batches;         // this rank's tally of each batch
  std::vector<int64_t> row_examples;  // this rank's examples, and their logits (rows of K)
  std::vector<float> row_logits;

  loader.start_epoch(0);
  Batch batch;
  while (loader.next(&batch)) {
    context.eval_batch = static_cast<int64_t>(batches.size());
    // A rank without examples in this batch still runs it: it joins the key-norm sums.
    model.forward(batch.images.data(), batch.labels.data(), batch.size, context, reducer);
    const std::vector<float> batch_logits = model.logits_to_host();
    batches.push_back(tally_of(batch_logits.data(), batch.labels.data(), batch.size, K));
    if (logits != nullptr) {
      row_examples.insert(row_examples.end(), batch.examples.begin(), batch.examples.end());
      row_logits.insert(row_logits.end(), batch_logits.begin(),
                        batch_logits.begin() + static_cast<int64_t>(batch.size) * K);
    }
  }

  // Sum over ranks, so every rank reports the metrics of the whole split.
  EvalResult result;
  if (average == config::OVER_EXAMPLES) {
    Tally total;
    for (const Tally& tally : batches) total += tally;
    result = means_of(total.summed_over_ranks(comm));
  } else {
    result = mean_of_batch_means(batches, comm);
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
