// Scalar reference of the look-up-table scoring kernel (see plaid_lut_kernels.h).
#include <algorithm>

#include "gingham/kernels/plaid_lut_kernels.h"

namespace gingham {

void lut_max_scalar(const float* cs, const float* lut, int64_t lp, int64_t row_bytes,
                    const int32_t* codes, const uint8_t* residuals, const float* scales,
                    int64_t n_tokens, float* mx) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* centroid_row = cs + static_cast<int64_t>(codes[t]) * lp;
    const uint8_t* row = residuals + t * row_bytes;
    for (int64_t i = 0; i < lp; ++i) {
      float value = centroid_row[i];
      for (int64_t j = 0; j < row_bytes; ++j) value += lut[(j * 256 + row[j]) * lp + i];
      mx[i] = std::max(mx[i], value * scales[t]);
    }
  }
}

void centroid_max_scalar(const float* table, int64_t lp, const int32_t* rows, int64_t n_tokens,
                         float* mx) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* row = table + static_cast<int64_t>(rows[t]) * lp;
    for (int64_t i = 0; i < lp; ++i) mx[i] = std::max(mx[i], row[i]);
  }
}

}  // namespace gingham
