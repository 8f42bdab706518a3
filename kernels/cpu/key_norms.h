// Key-head norms (docs/design.md §3.1) that drive KDGQA and DGQA.
#pragma once

namespace dgqa::cpu {

// k (B, T, G*d): norms[g] = sum_b sqrt(sum_{p, e} k[b, p, g*d + e]^2)  (norms (G), overwritten).
void key_norms(float* norms, const float* k, int B, int T, int G, int d);

}  // namespace dgqa::cpu
