// GELU, exact erf form: gelu(x) = 0.5 x (1 + erf(x / sqrt 2)).
#pragma once

#include <cstdint>

namespace dgqa::cpu {

void gelu_forward(float* out, const float* inp, int64_t n);

// dinp[i] += dout[i] * gelu'(inp[i])
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n);

}  // namespace dgqa::cpu
