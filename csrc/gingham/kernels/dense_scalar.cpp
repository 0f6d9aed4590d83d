// Scalar reference of the dense panel kernels (see dense_kernels.h).
#include <algorithm>

#include "gingham/kernels/dense_kernels.h"

namespace gingham {

int64_t panel_count(int64_t n_cols) { return (n_cols + kPanelCols - 1) / kPanelCols; }

void pack_panels(const float* b, int64_t n_cols, int64_t dim, float* packed) {
  const int64_t n_panels = panel_count(n_cols);
  std::fill(packed, packed + n_panels * dim * kPanelCols, 0.0f);
  for (int64_t c = 0; c < n_cols; ++c) {
    float* dst = packed + (c / kPanelCols) * dim * kPanelCols + (c % kPanelCols);
    for (int64_t k = 0; k < dim; ++k) dst[k * kPanelCols] = b[c * dim + k];
  }
}

namespace {

// The 16 dot products of row a with panel p, in dimension order.
void row_panel_scalar(const float* a, int64_t dim, const float* panel, float* dots) {
  for (int64_t j = 0; j < kPanelCols; ++j) dots[j] = 0.0f;
  for (int64_t k = 0; k < dim; ++k) {
    const float value = a[k];
    for (int64_t j = 0; j < kPanelCols; ++j) dots[j] += value * panel[k * kPanelCols + j];
  }
}

}  // namespace

void panel_dots_scalar(const float* a, int64_t n_rows, int64_t dim, const float* packed,
                       int64_t panel_begin, int64_t panel_end, float* out, int64_t ld) {
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t p = panel_begin; p < panel_end; ++p) {
      row_panel_scalar(a + r * dim, dim, packed + p * dim * kPanelCols,
                       out + r * ld + (p - panel_begin) * kPanelCols);
    }
  }
}

void panel_argmax_scalar(const float* a, int64_t n_rows, int64_t dim, const float* packed,
                         const float* bias, int64_t panel_begin, int64_t panel_end, float* best,
                         int32_t* arg) {
  float dots[kPanelCols];
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t p = panel_begin; p < panel_end; ++p) {
      row_panel_scalar(a + r * dim, dim, packed + p * dim * kPanelCols, dots);
      for (int64_t j = 0; j < kPanelCols; ++j) {
        const int64_t c = p * kPanelCols + j;
        const float score = dots[j] + bias[c];
        if (score > best[r]) {
          best[r] = score;
          arg[r] = static_cast<int32_t>(c);
        }
      }
    }
  }
}

}  // namespace gingham
