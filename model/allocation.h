// How query heads are shared among key/value heads (docs/design.md §3.2 and §3.3).
//
// An allocation `a` has one entry per K/V head: a[g] query heads use K/V head g, the
// entries are non-negative and sum to the number of query heads H. All functions here are
// pure and deterministic, so every rank that sees the same (all-reduced) key norms computes
// the same allocation.
#pragma once

#include <functional>
#include <vector>

namespace dgqa {

// H / G query heads per K/V head, the remainder H % G going one each to the lowest indices.
// This is GQA's allocation and the starting allocation of DGQA.
std::vector<int> equal_allocation(int H, int G);

// KDGQA (3.2): query heads in proportion to the min-max normalised key norms (one per K/V
// head). Equal norms give the equal split, and so does a NaN or infinite norm (a diverged run:
// there is no proportion to follow, and the model keeps a valid allocation).
std::vector<int> kdgqa_allocation(const std::vector<float>& norms, int H);

// DGQA's apportionment (3.3): query heads in proportion to the non-negative scores r, rounded
// half to even, then corrected one head at a time by the largest surplus or deficit against
// the exact quota. All-zero scores give the equal split, and so does a NaN or infinite score;
// a negative score throws std::invalid_argument. Computed in double (allocation.cc
// says why).
std::vector<int> apportion(const std::vector<float>& r, int H);

// A source of K/V head indices in [0, G) for the paper code's correction of a rounded
// apportionment: each call returns the next draw. Empty: the largest-remainder correction above.
using IndexDraws = std::function<int()>;

// The two DGQA variants: the score of a K/V head is how much its key norm moved away from
// the cache (kDiff) or a moving average of norm and cache (kEma).
enum class DgqaKind { kDiff, kEma };

struct DgqaUpdate {
  std::vector<int> allocation;
  std::vector<float> new_cache;
};

// One DGQA window step (3.3) of one layer: the new allocation from this step's key norms and
// the layer's cache, and the cache to keep until the next window step. With `random_index`, a
// rounded allocation that misses H is corrected at drawn indices instead: while it has too many
// heads, one is taken from the drawn entry if it has one; while too few, one is given to it.
DgqaUpdate dgqa_update(DgqaKind kind, const std::vector<float>& norms,
                       const std::vector<float>& cache, float beta, int window, int H,
                       const IndexDraws& random_index = {});

// The K/V head of each query head: the first a[0] query heads map to 0, the next a[1] to 1, ...
std::vector<int> kv_head_map(const std::vector<int>& allocation);

}  // namespace dgqa
