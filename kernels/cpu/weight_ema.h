// The update of an exponential moving average of the weights (docs/design.md §3.6), as
// torch.lerp(ema, params, weight) computes it: for each i,
//   weight < 0.5: ema += weight * (params - ema)
//   otherwise:    ema = params - (params - ema) * (1 - weight)
// so that weight 1 copies params exactly and weight 0 keeps ema. In float.
#pragma once

#include <cstdint>

namespace dgqa::cpu {

void weight_ema_update(float* ema, const float* params, int64_t n, float weight);

}  // namespace dgqa::cpu
