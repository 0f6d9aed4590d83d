// AVX2 + FMA (+ F16C for fp16 tokens) MaxSim. Compiled with -mavx2 -mfma -mf16c on this file
// only; reached only when cpuid reports those features.
//
// Register tile: 16 query rows (two ymm of the packed block) x NT <= 6 document tokens = 12
// accumulators, plus 2 query registers and 1 broadcast: 15 of the 16 ymm registers. Per
// dimension: 2 query loads + NT broadcasts feed 2*NT FMAs, so the loop is FMA-bound.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "gingham/kernels/maxsim_kernels.h"

namespace gingham {
namespace {

constexpr int kTileAvx2 = 6;

// Updates row_max[0..15] of one query block with the maxima over NT tokens.
template <int NT>
inline void tile_avx2(const float* packed_block, const float* tokens, int64_t dim,
                      float* row_max) {
  __m256 acc[NT][2];
  for (int t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < dim; ++k) {
    const __m256 q0 = _mm256_loadu_ps(packed_block + k * kQueryBlock);
    const __m256 q1 = _mm256_loadu_ps(packed_block + k * kQueryBlock + 8);
    for (int t = 0; t < NT; ++t) {
      const __m256 value = _mm256_broadcast_ss(tokens + t * dim + k);
      acc[t][0] = _mm256_fmadd_ps(q0, value, acc[t][0]);
      acc[t][1] = _mm256_fmadd_ps(q1, value, acc[t][1]);
    }
  }
  __m256 m0 = _mm256_loadu_ps(row_max), m1 = _mm256_loadu_ps(row_max + 8);
  for (int t = 0; t < NT; ++t) {
    m0 = _mm256_max_ps(m0, acc[t][0]);
    m1 = _mm256_max_ps(m1, acc[t][1]);
  }
  _mm256_storeu_ps(row_max, m0);
  _mm256_storeu_ps(row_max + 8, m1);
}

template <int NT>
inline void all_blocks_avx2(const PackedQuery& q, const float* tokens, float* row_max) {
  for (int64_t b = 0; b < q.n_blocks; ++b) {
    tile_avx2<NT>(q.data.data() + b * q.dim * kQueryBlock, tokens, q.dim,
                  row_max + b * kQueryBlock);
  }
}

void tail_avx2(const PackedQuery& q, const float* tokens, int64_t n_tail, float* row_max) {
  switch (n_tail) {
    case 1: all_blocks_avx2<1>(q, tokens, row_max); break;
    case 2: all_blocks_avx2<2>(q, tokens, row_max); break;
    case 3: all_blocks_avx2<3>(q, tokens, row_max); break;
    case 4: all_blocks_avx2<4>(q, tokens, row_max); break;
    case 5: all_blocks_avx2<5>(q, tokens, row_max); break;
    default: break;
  }
}

float sum_row_max(const PackedQuery& q, const float* row_max) {
  float score = 0.0f;
  for (int64_t row = 0; row < q.n_rows; ++row) score += row_max[row];
  return score;
}

void reset_row_max(KernelScratch* scratch) {
  std::fill(scratch->row_max.begin(), scratch->row_max.end(),
            -std::numeric_limits<float>::infinity());
}

void half_to_float_avx2(const uint16_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(halves));
  }
  for (; i < count; ++i) dst[i] = _cvtsh_ss(src[i]);
}

}  // namespace

float maxsim_f32_avx2(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                      KernelScratch* scratch) {
  reset_row_max(scratch);
  float* row_max = scratch->row_max.data();
  int64_t t = 0;
  for (; t + kTileAvx2 <= n_tokens; t += kTileAvx2) {
    all_blocks_avx2<kTileAvx2>(q, tokens + t * q.dim, row_max);
  }
  tail_avx2(q, tokens + t * q.dim, n_tokens - t, row_max);
  return sum_row_max(q, row_max);
}

float maxsim_f16_avx2(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                      KernelScratch* scratch) {
  reset_row_max(scratch);
  float* row_max = scratch->row_max.data();
  float* tile = scratch->tile.data();
  for (int64_t t = 0; t < n_tokens; t += kTileAvx2) {
    const int64_t n_tile = n_tokens - t < kTileAvx2 ? n_tokens - t : kTileAvx2;
    half_to_float_avx2(tokens + t * q.dim, n_tile * q.dim, tile);
    if (n_tile == kTileAvx2) {
      all_blocks_avx2<kTileAvx2>(q, tile, row_max);
    } else {
      tail_avx2(q, tile, n_tile, row_max);
    }
  }
  return sum_row_max(q, row_max);
}

}  // namespace gingham
