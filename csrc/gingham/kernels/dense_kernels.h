// Dense "rows x packed columns" kernels shared by k-means (nearest-centroid assignment) and
// PLAID stage 1 (query x centroid scores).
//
//   dots[r][c]  = <a_r, b_c>                       a: n_rows x dim, row-major float32
//   argmax[r]   = first c maximizing <a_r, b_c> + bias[c]
//
// The column side is packed once into panels of kPanelCols columns, dimension-major inside a
// panel, zero-padded past the last column:
//
//   packed[p][k][j] = b[p * kPanelCols + j][k]      p < n_panels, k < dim, j < kPanelCols
//
// so one 8-wide load at (p, k) yields dimension k of 8 consecutive columns. The AVX2 kernel keeps
// a 6-row x 16-column tile in 12 ymm accumulators (the BLIS Haswell shape): per dimension 2 panel
// loads + 6 broadcasts feed 12 FMAs.
//
// Precision: float32 products and sums in dimension order; SIMD and scalar differ only in FMA
// rounding. Ties in argmax go to the lower column index (columns are visited in ascending order
// and only a strictly greater score replaces the running best).
#pragma once

#include <cstdint>

namespace gingham {

constexpr int64_t kPanelCols = 16;

// Panels holding n_cols columns. Defined in the baseline file (no inline helper is compiled
// inside an ISA file, where the linker could pick its wider copy for baseline callers).
int64_t panel_count(int64_t n_cols);

// packed: panel_count(n_cols) * dim * kPanelCols floats.
void pack_panels(const float* b, int64_t n_cols, int64_t dim, float* packed);

// out[r * ld + (c - panel_begin * kPanelCols)] = <a_r, b_c> for every column c of panels
// [panel_begin, panel_end), padding columns included (they score 0).
using PanelDotsFn = void (*)(const float* a, int64_t n_rows, int64_t dim, const float* packed,
                             int64_t panel_begin, int64_t panel_end, float* out, int64_t ld);

// Running arg-max over the columns of panels [panel_begin, panel_end): for each row r, every
// column c with score <a_r, b_c> + bias[c] > best[r] replaces (best[r], arg[r]). bias holds
// panel_count * kPanelCols values; padding columns must carry -inf so they never win.
// Calls on ascending panel ranges give the first maximizing column overall.
using PanelArgmaxFn = void (*)(const float* a, int64_t n_rows, int64_t dim, const float* packed,
                               const float* bias, int64_t panel_begin, int64_t panel_end,
                               float* best, int32_t* arg);

struct DenseKernels {
  PanelDotsFn dots;
  PanelArgmaxFn argmax;
};

// The table for the SIMD level in use is kernels().dense (kernels/kernels.h); AVX2 and AVX-512
// levels use the AVX2 kernels.

void panel_dots_scalar(const float* a, int64_t n_rows, int64_t dim, const float* packed,
                       int64_t panel_begin, int64_t panel_end, float* out, int64_t ld);
void panel_argmax_scalar(const float* a, int64_t n_rows, int64_t dim, const float* packed,
                         const float* bias, int64_t panel_begin, int64_t panel_end, float* best,
                         int32_t* arg);
void panel_dots_avx2(const float* a, int64_t n_rows, int64_t dim, const float* packed,
                     int64_t panel_begin, int64_t panel_end, float* out, int64_t ld);
void panel_argmax_avx2(const float* a, int64_t n_rows, int64_t dim, const float* packed,
                       const float* bias, int64_t panel_begin, int64_t panel_end, float* best,
                       int32_t* arg);

}  // namespace gingham
