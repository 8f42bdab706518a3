// exp and the normal distribution's tail, written so that a loop over them vectorises
// (`#pragma omp simd`): no branches, no library calls. glibc's expf/erff are scalar calls, and
// GELU's two erf/exp per element cost more than its matrix products on small models.
//
// Accuracy: exp_fast within 2 ulp of the exact value; normal_tail within (1 + z^2/2) 4e-7
// relative (the z^2/2 part is the rounding of z*z in float, as expf(-0.5f*z*z) has it too). The
// build turns floating-point contraction off (CMakeLists.txt), so a function computes the same bits
// whatever the vector width it was compiled for.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/simd.h"  // DGQA_SIMD_CLONES, DGQA_ALWAYS_INLINE: the hot kernels' clones

namespace dgqa::cpu {

// e^x for x in [-87, 88] (outside, x is clamped: e^-87 ~ 1.6e-38 stands in for underflow);
// NaN gives NaN. e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2)/2, e^r by its Taylor
// series to r^7.
inline DGQA_ALWAYS_INLINE float exp_fast(float x) {
  x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);  // NaN passes: r and the result are NaN
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * kLog2e + kRound) - kRound;
  // ln 2 in two parts, so that n * ln2_hi is exact and r keeps its low bits.
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-6f;
  // e^r = 1 + (r + r^2 q(r)), q's terms paired (Estrin) so that the dependency chain is short,
  // the 1 added last so that it is rounded once.
  const float r2 = r * r;
  const float q = (0.5f + r * (1.f / 6.f)) +
                  r2 * ((1.f / 24.f + r * (1.f / 120.f)) + r2 * (1.f / 720.f + r * (1.f / 5040.f)));
  const float p = 1.f + (r + r2 * q);
  // n is in [-126, 127] for a clamped x; a NaN n (x NaN) stands as 0, as converting NaN to an
  // integer is undefined. n + 127 >= 1: the shift is of a positive value.
  const float whole_n = n == n ? n : 0.f;
  const int32_t exponent_bits = (static_cast<int32_t>(whole_n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &exponent_bits, sizeof(scale));
  return p * scale;
}

// The polynomial P(t) of normal_tail below: the degree-9 Chebyshev fit of Numerical Recipes
// (section 6.2) to ln(erfc(y) / t) + y^2, with t = 1 / (1 + y/2).
inline DGQA_ALWAYS_INLINE float erfc_exponent_fit(float t) {
  // Estrin's scheme: the same polynomial as Horner's c0 + t (c1 + t (c2 + ...)) with a dependency
  // chain of 4 multiply-adds instead of 9.
  const float t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
  const float c01 = -1.26551223f + 1.00002368f * t, c23 = 0.37409196f + 0.09678418f * t;
  const float c45 = -0.18628806f + 0.27886807f * t, c67 = -1.13520398f + 1.48851587f * t;
  const float c89 = -0.82215223f + 0.17087277f * t;
  return (c01 + t2 * c23) + t4 * (c45 + t2 * c67) + t8 * c89;
}

// The upper tail of the standard normal distribution, P(Z > z) = erfc(z / sqrt 2) / 2, for
// z >= 0: erfc(y) = t e^(-y^2 + P(t)) (relative error below 1.2e-7 for every y >= 0), one exp.
inline DGQA_ALWAYS_INLINE float normal_tail(float z) {
  const float y = z * 0.70710678118654752f;
  const float t = 1.f / (1.f + 0.5f * y);
  return 0.5f * t * exp_fast(erfc_exponent_fit(t) - 0.5f * (z * z));
}

// The same tail and e^(-z^2/2) (which GELU's derivative needs) through *gaussian: two exps.
inline DGQA_ALWAYS_INLINE float normal_tail(float z, float* gaussian) {
  const float y = z * 0.70710678118654752f;
  const float t = 1.f / (1.f + 0.5f * y);
  const float e = exp_fast(-0.5f * (z * z));  // e^(-y^2), one rounding in its argument
  *gaussian = e;
  return 0.5f * t * e * exp_fast(erfc_exponent_fit(t));
}

// Reductions in a fixed order that vectorises: element j goes to partial sum j % kLanes, and the
// partial sums are added pairwise at the end. The order does not depend on the vector width.
constexpr int kLanes = 16;

template <typename Sum>
inline DGQA_ALWAYS_INLINE Sum add_lanes(Sum* partial) {
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int l = 0; l < width; ++l) partial[l] += partial[l + width];
  }
  return partial[0];
}

// partial[j % kLanes] += term(j) for j in [0, n): a sum of several pieces accumulates its
// pieces into one set of partial sums and adds the lanes once, at the end.
template <typename Sum, typename Term>
inline DGQA_ALWAYS_INLINE void lane_accumulate(Sum* partial, int n, const Term& term) {
  int j = 0;
  for (; j + kLanes <= n; j += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) partial[l] += term(j + l);
  }
  for (int l = 0; j + l < n; ++l) partial[l] += term(j + l);
}

// sum_j term(j) for j in [0, n), accumulated in type Sum.
template <typename Sum, typename Term>
inline DGQA_ALWAYS_INLINE Sum lane_sum(int n, const Term& term) {
  Sum partial[kLanes] = {};
  lane_accumulate(partial, n, term);
  return add_lanes(partial);
}

}  // namespace dgqa::cpu
