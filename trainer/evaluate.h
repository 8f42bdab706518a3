// Evaluation of a model on a whole dataset split.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/communicator.h"
#include "data/loader.h"
#include "model/reducer.h"
#include "model/vit.h"
#include "trainer/config.pb.h"

namespace dgqa {

// The sums behind the means are exact (integers, the loss in units of 2^-32 per example), so
// the same examples give the same result whatever their order, batches or ranks, as long as
// each example's logits are the same. (With train.eval_average OVER_BATCHES the means are means
// of the batches' means instead, and depend on the evaluation batch size.)
struct EvalResult {
  double loss = 0;       // mean cross-entropy over the examples; NaN when an example's is not
                         // finite (or too large to sum exactly)
  double top1 = 0;       // fraction whose largest logit (first on ties) is the label
  double top5 = 0;       // fraction whose label is among the 5 largest logits (label_in_top_k)
  int64_t examples = 0;  // every example of the split, counted once
};

// Whether `label` is among the k largest of the K logits of `row`, equal logits ranked by class
// index (the lower first): with k = 1, whether the first largest logit is the label's. Every
// class is among the k largest when K <= k.
bool label_in_top_k(const float* row, int K, int label, int k);

// How many of the B rows of `logits` (B, K) have their label among their k largest logits.
int64_t count_top_k(const float* logits, const int32_t* labels, int B, int K, int k);

// Runs every batch of `loader` (an evaluation loader, sharded over the ranks of `comm`) through
// the model at training step `step` (which only labels the pass: evaluation changes no state,
// except DGQA's with model.dgqa_eval PER_BATCH_UPDATE). The result covers every rank's examples,
// averaged as `average` (train.eval_average) says: OVER_BATCHES averages each global batch's
// means over the batches. When `logits` is given it receives the logits of every
// example of the split, (examples, num_classes) in the dataset's order, on every rank (one
// all-reduce of that size: each rank adds its own rows to zeros).
// The key norms are summed with `reducer` (trainer/key_norm_reducer.h).
EvalResult evaluate(VisionTransformer& model, BatchLoader& loader, Communicator& comm,
                    Reducer& reducer, int64_t step, config::EvalAverage average,
                    std::vector<float>* logits = nullptr);

}  // namespace dgqa
