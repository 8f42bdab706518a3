#include "model/allocation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>

namespace dgqa {
namespace {

void check_shape(int H, int G) {
  if (G < 1) throw std::invalid_argument("allocation: no key/value heads");
  if (H < 0) throw std::invalid_argument("allocation: negative head count " + std::to_string(H));
}

// The precision of the arithmetic matters: a head-count boundary or a tie in the fix-up can
// depend on the last bit. KDGQA works in float32 like the paper's code (docs/design.md §3.2);
// DGQA works in double, which is how the reference test vectors were made: there, scores
// in exact integer ratios give exact ties in the surplus, broken by the first index, where
// float32 quotas would break them by rounding noise.
template <typename Real>
Real sum_of(const std::vector<Real>& values) {
  return std::accumulate(values.begin(), values.end(), Real(0));
}

// Whether every value is finite. A NaN or infinite key norm (a diverged run, or weights that
// hold them) has no proportional share: the allocation falls back to the equal split, so that
// the model still runs on a valid allocation and the NaN shows in its loss.
template <typename Real>
bool all_finite(const std::vector<Real>& values) {
  return std::all_of(values.begin(), values.end(), [](Real v) { return std::isfinite(v); });
}

int sum_of(const std::vector<int>& values) {
  return std::accumulate(values.begin(), values.end(), 0);
}

// The exact (fractional) share of H for each score: q[i] = r[i] / sum(r) * H.
template <typename Real>
std::vector<Real> quotas(const std::vector<Real>& r, int H) {
  const Real total = sum_of(r);
  std::vector<Real> q(r.size());
  for (size_t i = 0; i < r.size(); ++i) q[i] = r[i] / total * static_cast<Real>(H);
  return q;
}

// std::nearbyint in the default rounding mode rounds half to even, like torch.round. Quotas
// lie in [0, H] (finite, non-negative shares of H); one outside is an internal error, thrown
// rather than converted (converting NaN or a value beyond int is undefined).
template <typename Real>
std::vector<int> round_half_even(const std::vector<Real>& q, int H) {
  std::vector<int> a(q.size());
  for (size_t i = 0; i < q.size(); ++i) {
    const Real rounded = std::nearbyint(q[i]);
    if (!(rounded >= 0 && rounded <= static_cast<Real>(H))) {
      throw std::logic_error("allocation: quota " + std::to_string(q[i]) + " is outside [0, " +
                             std::to_string(H) + "]");
    }
    a[i] = static_cast<int>(rounded);
  }
  return a;
}

// The paper code's correction: one head at a time at drawn indices. Each draw takes a head
// with probability > 0 while a sum above H >= 0 leaves some entry positive, so the loop ends;
// the bound only turns a broken source of draws into an error instead of a hang.
void correct_at_random(std::vector<int>& a, int H, const IndexDraws& draw) {
  const int G = static_cast<int>(a.size());
  for (int64_t draws = 0; sum_of(a) != H; ++draws) {
    const int i = draw();
    if (i < 0 || i >= G || draws > (int64_t{1} << 24)) {
      throw std::logic_error("apportion: the random correction drew " + std::to_string(i) +
                             " after " + std::to_string(draws) + " draws");
    }
    if (sum_of(a) > H) {
      if (a[i] > 0) --a[i];
    } else {
      ++a[i];
    }
  }
}

// apportion() on double scores; see the note on precision above.
std::vector<int> apportion_in_double(const std::vector<double>& r, int H,
                                     const IndexDraws& random_index = {}) {
  check_shape(H, static_cast<int>(r.size()));
  if (std::any_of(r.begin(), r.end(), [](double v) { return v < 0; })) {
    throw std::invalid_argument("apportion: a score is negative");
  }
  if (!all_finite(r) || sum_of(r) == 0.0) return equal_allocation(H, static_cast<int>(r.size()));

  const std::vector<double> q = quotas(r, H);
  std::vector<int> a = round_half_even(q, H);
  if (random_index) {
    correct_at_random(a, H, random_index);
    return a;
  }

  // Too many heads: take one from the entry furthest above its quota (first index on ties).
  while (sum_of(a) > H) {
    int pick = -1;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i] > 0 && (pick < 0 || a[i] - q[i] > a[pick] - q[pick])) pick = static_cast<int>(i);
    }
    --a[pick];
  }
  // Too few: give one to the entry furthest below its quota (first index on ties).
  while (sum_of(a) < H) {
    size_t pick = 0;
    for (size_t i = 1; i < a.size(); ++i) {
      if (q[i] - a[i] > q[pick] - a[pick]) pick = i;
    }
    ++a[pick];
  }
  return a;
}

}  // namespace

std::vector<int> equal_allocation(int H, int G) {
  check_shape(H, G);
  std::vector<int> a(G, H / G);
  for (int g = 0; g < H % G; ++g) ++a[g];
  return a;
}

std::vector<int> kdgqa_allocation(const std::vector<float>& norms, int H) {
  const int G = static_cast<int>(norms.size());
  check_shape(H, G);
  if (!all_finite(norms)) return equal_allocation(H, G);
  const auto [min_it, max_it] = std::minmax_element(norms.begin(), norms.end());
  const float lo = *min_it, hi = *max_it;
  if (hi == lo) return equal_allocation(H, G);

  std::vector<float> m(norms.size());
  for (size_t i = 0; i < norms.size(); ++i) m[i] = (norms[i] - lo) / (hi - lo);
  std::vector<int> a = round_half_even(quotas(m, H), H);

  // Rounding can miss H by a few heads; the paper's code corrects the largest (resp.
  // smallest) entry one head at a time. max_element/min_element pick the first on ties.
  while (sum_of(a) > H) --*std::max_element(a.begin(), a.end());
  while (sum_of(a) < H) ++*std::min_element(a.begin(), a.end());
  return a;
}

std::vector<int> apportion(const std::vector<float>& r, int H) {
  return apportion_in_double(std::vector<double>(r.begin(), r.end()), H);
}

DgqaUpdate dgqa_update(DgqaKind kind, const std::vector<float>& norms,
                       const std::vector<float>& cache, float beta, int window, int H,
                       const IndexDraws& random_index) {
  if (norms.size() != cache.size()) {
    throw std::invalid_argument("dgqa_update: " + std::to_string(norms.size()) + " norms but " +
                                std::to_string(cache.size()) + " cache entries");
  }
  if (window < 1) throw std::invalid_argument("dgqa_update: window must be >= 1");

  const double b = beta;
  std::vector<double> scores(norms.size());
  for (size_t i = 0; i < norms.size(); ++i) {
    const double n = norms[i], c = cache[i];
    scores[i] = kind == DgqaKind::kDiff ? std::fabs(c - n) : b * n + (1.0 - b) * c;
  }

  DgqaUpdate update;
  update.allocation = apportion_in_double(scores, H, random_index);
  // The paper's cache update, the same for both kinds (docs/design.md §3.3); the cache is float32.
  update.new_cache.resize(norms.size());
  for (size_t i = 0; i < norms.size(); ++i) {
    update.new_cache[i] = (cache[i] + norms[i]) / static_cast<float>(window);
  }
  return update;
}

std::vector<int> kv_head_map(const std::vector<int>& allocation) {
  std::vector<int> map;
  for (size_t g = 0; g < allocation.size(); ++g) {
    if (allocation[g] < 0) throw std::invalid_argument("kv_head_map: negative allocation entry");
    map.insert(map.end(), allocation[g], static_cast<int>(g));
  }
  return map;
}

}  // namespace dgqa
