#include "gingham/quantize.h"

#include <cmath>

#include "gingham/threads.h"

namespace gingham {

void quantize_int8(const float* tokens, int64_t n_tokens, int64_t dim, int8_t* values,
                   float* scales) {
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) if (n_tokens > 4096)
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* x = tokens + t * dim;
    float amax = 0.0f;
    for (int64_t k = 0; k < dim; ++k) amax = std::fmax(amax, std::fabs(x[k]));
    const float scale = amax / 127.0f;
    // Divide (not multiply by 1/scale): the largest entry then maps to exactly +-127.
    for (int64_t k = 0; k < dim; ++k) {
      const float v = scale > 0.0f ? std::nearbyint(x[k] / scale) : 0.0f;
      values[t * dim + k] = static_cast<int8_t>(std::fmax(-127.0f, std::fmin(127.0f, v)));
    }
    scales[t] = scale;
  }
}

}  // namespace gingham
