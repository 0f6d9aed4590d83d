// AVX2 + FMA dense panel kernels (see dense_kernels.h). Compiled with -mavx2 -mfma on
// this file only; reached only when cpuid reports those features.
//
// Register tile: MR <= 6 rows x 16 columns = 12 accumulators + 2 panel registers + 1 broadcast.
// The arg-max epilogue keeps, per row, 8 running (best, index) lanes in memory so it needs no
// horizontal reduction per tile: lane l sees columns l, l + 8, l + 16, ... in ascending order.
// The lanes are reduced once at the end of a call (max score, ties -> lower column).
#include <immintrin.h>

#include <limits>

#include "gingham/kernels/dense_kernels.h"

namespace gingham {
namespace {

constexpr int kRowsAvx2 = 6;

template <int MR>
inline void tile_avx2(const float* a, int64_t dim, const float* panel, __m256 acc[MR][2]) {
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < dim; ++k) {
    const __m256 b0 = _mm256_loadu_ps(panel + k * kPanelCols);
    const __m256 b1 = _mm256_loadu_ps(panel + k * kPanelCols + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 value = _mm256_broadcast_ss(a + r * dim + k);
      acc[r][0] = _mm256_fmadd_ps(value, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(value, b1, acc[r][1]);
    }
  }
}

template <int MR>
void dots_rows_avx2(const float* a, int64_t dim, const float* packed, int64_t panel_begin,
                    int64_t panel_end, float* out, int64_t ld) {
  __m256 acc[MR][2];
  for (int64_t p = panel_begin; p < panel_end; ++p) {
    tile_avx2<MR>(a, dim, packed + p * dim * kPanelCols, acc);
    float* dst = out + (p - panel_begin) * kPanelCols;
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_ps(dst + r * ld, acc[r][0]);
      _mm256_storeu_ps(dst + r * ld + 8, acc[r][1]);
    }
  }
}

template <int MR>
void argmax_rows_avx2(const float* a, int64_t dim, const float* packed, const float* bias,
                      int64_t panel_begin, int64_t panel_end, float* best, int32_t* arg) {
  alignas(32) float lane_best[MR][8];
  alignas(32) int32_t lane_arg[MR][8];
  for (int r = 0; r < MR; ++r) {
    for (int l = 0; l < 8; ++l) {
      lane_best[r][l] = -std::numeric_limits<float>::infinity();
      lane_arg[r][l] = -1;
    }
  }
  const __m256i lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 acc[MR][2];
  for (int64_t p = panel_begin; p < panel_end; ++p) {
    tile_avx2<MR>(a, dim, packed + p * dim * kPanelCols, acc);
    const __m256 bias0 = _mm256_loadu_ps(bias + p * kPanelCols);
    const __m256 bias1 = _mm256_loadu_ps(bias + p * kPanelCols + 8);
    const __m256i col0 = _mm256_add_epi32(lane_index,
                                          _mm256_set1_epi32(static_cast<int>(p * kPanelCols)));
    const __m256i col1 = _mm256_add_epi32(col0, _mm256_set1_epi32(8));
    for (int r = 0; r < MR; ++r) {
      __m256 b = _mm256_load_ps(lane_best[r]);
      __m256i i = _mm256_load_si256(reinterpret_cast<const __m256i*>(lane_arg[r]));
      const __m256 s0 = _mm256_add_ps(acc[r][0], bias0);
      const __m256 g0 = _mm256_cmp_ps(s0, b, _CMP_GT_OQ);
      b = _mm256_blendv_ps(b, s0, g0);
      i = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(i),
                                               _mm256_castsi256_ps(col0), g0));
      const __m256 s1 = _mm256_add_ps(acc[r][1], bias1);
      const __m256 g1 = _mm256_cmp_ps(s1, b, _CMP_GT_OQ);
      b = _mm256_blendv_ps(b, s1, g1);
      i = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(i),
                                               _mm256_castsi256_ps(col1), g1));
      _mm256_store_ps(lane_best[r], b);
      _mm256_store_si256(reinterpret_cast<__m256i*>(lane_arg[r]), i);
    }
  }
  // Reduce the lanes; columns from this call are all above any earlier arg[r] only when
  // panel ranges ascend, so a tie with the incoming best keeps the incoming (lower) column.
  for (int r = 0; r < MR; ++r) {
    float rb = -std::numeric_limits<float>::infinity();
    int32_t ri = -1;
    for (int l = 0; l < 8; ++l) {
      const float v = lane_best[r][l];
      const int32_t c = lane_arg[r][l];
      if (c < 0) continue;
      if (v > rb || (v == rb && c < ri)) {
        rb = v;
        ri = c;
      }
    }
    if (ri >= 0 && rb > best[r]) {
      best[r] = rb;
      arg[r] = ri;
    }
  }
}

}  // namespace

void panel_dots_avx2(const float* a, int64_t n_rows, int64_t dim, const float* packed,
                     int64_t panel_begin, int64_t panel_end, float* out, int64_t ld) {
  int64_t r = 0;
  for (; r + kRowsAvx2 <= n_rows; r += kRowsAvx2) {
    dots_rows_avx2<kRowsAvx2>(a + r * dim, dim, packed, panel_begin, panel_end, out + r * ld, ld);
  }
  const float* ar = a + r * dim;
  float* o = out + r * ld;
  switch (n_rows - r) {
    case 1: dots_rows_avx2<1>(ar, dim, packed, panel_begin, panel_end, o, ld); break;
    case 2: dots_rows_avx2<2>(ar, dim, packed, panel_begin, panel_end, o, ld); break;
    case 3: dots_rows_avx2<3>(ar, dim, packed, panel_begin, panel_end, o, ld); break;
    case 4: dots_rows_avx2<4>(ar, dim, packed, panel_begin, panel_end, o, ld); break;
    case 5: dots_rows_avx2<5>(ar, dim, packed, panel_begin, panel_end, o, ld); break;
    default: break;
  }
}

void panel_argmax_avx2(const float* a, int64_t n_rows, int64_t dim, const float* packed,
                       const float* bias, int64_t panel_begin, int64_t panel_end, float* best,
                       int32_t* arg) {
  int64_t r = 0;
  for (; r + kRowsAvx2 <= n_rows; r += kRowsAvx2) {
    argmax_rows_avx2<kRowsAvx2>(a + r * dim, dim, packed, bias, panel_begin, panel_end,
                                best + r, arg + r);
  }
  const float* ar = a + r * dim;
  float* br = best + r;
  int32_t* ir = arg + r;
  switch (n_rows - r) {
    case 1: argmax_rows_avx2<1>(ar, dim, packed, bias, panel_begin, panel_end, br, ir); break;
    case 2: argmax_rows_avx2<2>(ar, dim, packed, bias, panel_begin, panel_end, br, ir); break;
    case 3: argmax_rows_avx2<3>(ar, dim, packed, bias, panel_begin, panel_end, br, ir); break;
    case 4: argmax_rows_avx2<4>(ar, dim, packed, bias, panel_begin, panel_end, br, ir); break;
    case 5: argmax_rows_avx2<5>(ar, dim, packed, bias, panel_begin, panel_end, br, ir); break;
    default: break;
  }
}

}  // namespace gingham
