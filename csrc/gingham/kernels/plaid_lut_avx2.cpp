// AVX2 look-up-table scoring kernel (see plaid_lut_kernels.h). Compiled with -mavx2 -mfma on
// this file only. Query rows are processed 32 at a time (4 ymm accumulators + 4 running maxima);
// per token and residual byte, four loads and adds of one contiguous table row. centroid_max
// keeps up to 64 running maxima in registers: per token, one max per 8 rows of its table row.
#include <immintrin.h>

#include "gingham/kernels/plaid_lut_kernels.h"

namespace gingham {
namespace {

template <int NV>  // NV ymm registers = 8 * NV query rows
void rows_avx2(const float* cs, const float* lut, int64_t lp, int64_t i0, int64_t row_bytes,
               const int32_t* codes, const uint8_t* residuals, const float* scales,
               int64_t n_tokens, float* mx) {
  __m256 m[NV];
  for (int v = 0; v < NV; ++v) m[v] = _mm256_loadu_ps(mx + i0 + 8 * v);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* centroid_row = cs + static_cast<int64_t>(codes[t]) * lp + i0;
    const uint8_t* row = residuals + t * row_bytes;
    __m256 acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = _mm256_loadu_ps(centroid_row + 8 * v);
    for (int64_t j = 0; j < row_bytes; ++j) {
      const float* entry = lut + (j * 256 + row[j]) * lp + i0;
      for (int v = 0; v < NV; ++v) acc[v] = _mm256_add_ps(acc[v], _mm256_loadu_ps(entry + 8 * v));
    }
    const __m256 scale = _mm256_set1_ps(scales[t]);
    for (int v = 0; v < NV; ++v) m[v] = _mm256_max_ps(m[v], _mm256_mul_ps(acc[v], scale));
  }
  for (int v = 0; v < NV; ++v) _mm256_storeu_ps(mx + i0 + 8 * v, m[v]);
}

// centroid_max over query rows [i0, i0 + 8 NV): the running maxima stay in registers.
// _mm256_max_ps(m, row) returns row where either is NaN, as std::max(m, row) does not; the
// tables hold no NaN (finite queries and centroids).
template <int NV>
void centroid_rows_avx2(const float* table, int64_t lp, int64_t i0, const int32_t* rows,
                        int64_t n_tokens, float* mx) {
  __m256 m[NV];
  for (int v = 0; v < NV; ++v) m[v] = _mm256_loadu_ps(mx + i0 + 8 * v);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* row = table + static_cast<int64_t>(rows[t]) * lp + i0;
    for (int v = 0; v < NV; ++v) m[v] = _mm256_max_ps(m[v], _mm256_loadu_ps(row + 8 * v));
  }
  for (int v = 0; v < NV; ++v) _mm256_storeu_ps(mx + i0 + 8 * v, m[v]);
}

}  // namespace

void centroid_max_avx2(const float* table, int64_t lp, const int32_t* rows, int64_t n_tokens,
                       float* mx) {
  int64_t i0 = 0;
  for (; i0 + 64 <= lp; i0 += 64) centroid_rows_avx2<8>(table, lp, i0, rows, n_tokens, mx);
  if (i0 + 32 <= lp) {
    centroid_rows_avx2<4>(table, lp, i0, rows, n_tokens, mx);
    i0 += 32;
  }
  if (i0 < lp) centroid_rows_avx2<2>(table, lp, i0, rows, n_tokens, mx);
}

void lut_max_avx2(const float* cs, const float* lut, int64_t lp, int64_t row_bytes,
                  const int32_t* codes, const uint8_t* residuals, const float* scales,
                  int64_t n_tokens, float* mx) {
  int64_t i0 = 0;
  for (; i0 + 32 <= lp; i0 += 32) {
    rows_avx2<4>(cs, lut, lp, i0, row_bytes, codes, residuals, scales, n_tokens, mx);
  }
  if (i0 < lp) rows_avx2<2>(cs, lut, lp, i0, row_bytes, codes, residuals, scales, n_tokens, mx);
}

}  // namespace gingham
