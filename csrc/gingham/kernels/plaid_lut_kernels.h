// Scoring compressed tokens against one query without building float tokens (plaid.h).
//
// Per query (Lq rows, padded with zero rows to lp = a multiple of 16) two tables, both laid out
// query-row innermost so that one document token costs a few contiguous lp-wide row additions:
//
//   cs [c][i]        = <q_i, centroid_c>                          n_centroids x lp
//   lut[j][v][i]     = sum over the dims d packed in residual byte j of
//                      q_i[d] * weights[d][bucket of d in byte value v]     row_bytes x 256 x lp
//
// so <q_i, decode(token)> = scale * (cs[code][i] + sum_j lut[j][residual_byte_j][i])  (codec.h),
// and
//
//   mx[i] = max over the document's tokens of that value     (MaxSim before the sum over i)
//
// The approximate stage takes the same maximum over centroid rows only (centroid_max): one
// lp-wide row of a table (the query's centroid cosines) per token, no residual bytes.
//
// Precision: float32; the scalar reference and the AVX2 kernel add in the same order
// (centroid row, then bytes 0, 1, ...) and multiply by the scale last, so they agree bit for bit.
#pragma once

#include <cstdint>

namespace gingham {

// Updates mx[0..lp) with the n_tokens tokens (codes as int32, residual rows of row_bytes,
// scales as float32).
using LutMaxFn = void (*)(const float* cs, const float* lut, int64_t lp, int64_t row_bytes,
                          const int32_t* codes, const uint8_t* residuals, const float* scales,
                          int64_t n_tokens, float* mx);

// Updates mx[0..lp) with table[rows[t] * lp .. + lp) for the n_tokens listed rows (lp a
// multiple of 16): max only, so every level gives the same bits.
using CentroidMaxFn = void (*)(const float* table, int64_t lp, const int32_t* rows,
                               int64_t n_tokens, float* mx);

// The kernels for the SIMD level in use are kernels().lut_max and kernels().centroid_max
// (kernels/kernels.h).

void lut_max_scalar(const float* cs, const float* lut, int64_t lp, int64_t row_bytes,
                    const int32_t* codes, const uint8_t* residuals, const float* scales,
                    int64_t n_tokens, float* mx);
void lut_max_avx2(const float* cs, const float* lut, int64_t lp, int64_t row_bytes,
                  const int32_t* codes, const uint8_t* residuals, const float* scales,
                  int64_t n_tokens, float* mx);
void centroid_max_scalar(const float* table, int64_t lp, const int32_t* rows, int64_t n_tokens,
                         float* mx);
void centroid_max_avx2(const float* table, int64_t lp, const int32_t* rows, int64_t n_tokens,
                       float* mx);

}  // namespace gingham
