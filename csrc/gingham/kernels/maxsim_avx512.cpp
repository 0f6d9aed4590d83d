// AVX-512 (F/BW/DQ/VL) MaxSim. Compiled with AVX-512 flags on this file only; reached only when
// cpuid and XCR0 report AVX-512 state.
//
// Register tile: NB <= 2 query blocks (one zmm = 16 rows each) x NT <= 8 tokens = 16 zmm
// accumulators; per dimension 2 query loads + 8 broadcasts feed 16 FMAs.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "gingham/kernels/maxsim_kernels.h"

namespace gingham {
namespace {

constexpr int kTileAvx512 = 8;

template <int NB, int NT>
inline void tile_avx512(const PackedQuery& q, int64_t block, const float* tokens,
                        float* row_max) {
  const int64_t dim = q.dim;
  const float* packed = q.data.data() + block * dim * kQueryBlock;
  __m512 acc[NT][NB];
  for (int t = 0; t < NT; ++t)
    for (int b = 0; b < NB; ++b) acc[t][b] = _mm512_setzero_ps();
  for (int64_t k = 0; k < dim; ++k) {
    __m512 qv[NB];
    for (int b = 0; b < NB; ++b) qv[b] = _mm512_loadu_ps(packed + (b * dim + k) * kQueryBlock);
    for (int t = 0; t < NT; ++t) {
      const __m512 value = _mm512_set1_ps(tokens[t * dim + k]);
      for (int b = 0; b < NB; ++b) acc[t][b] = _mm512_fmadd_ps(qv[b], value, acc[t][b]);
    }
  }
  for (int b = 0; b < NB; ++b) {
    float* dst = row_max + (block + b) * kQueryBlock;
    __m512 m = _mm512_loadu_ps(dst);
    for (int t = 0; t < NT; ++t) m = _mm512_max_ps(m, acc[t][b]);
    _mm512_storeu_ps(dst, m);
  }
}

template <int NT>
inline void all_blocks_avx512(const PackedQuery& q, const float* tokens, float* row_max) {
  int64_t b = 0;
  for (; b + 2 <= q.n_blocks; b += 2) tile_avx512<2, NT>(q, b, tokens, row_max);
  if (b < q.n_blocks) tile_avx512<1, NT>(q, b, tokens, row_max);
}

void tail_avx512(const PackedQuery& q, const float* tokens, int64_t n_tail, float* row_max) {
  switch (n_tail) {
    case 1: all_blocks_avx512<1>(q, tokens, row_max); break;
    case 2: all_blocks_avx512<2>(q, tokens, row_max); break;
    case 3: all_blocks_avx512<3>(q, tokens, row_max); break;
    case 4: all_blocks_avx512<4>(q, tokens, row_max); break;
    case 5: all_blocks_avx512<5>(q, tokens, row_max); break;
    case 6: all_blocks_avx512<6>(q, tokens, row_max); break;
    case 7: all_blocks_avx512<7>(q, tokens, row_max); break;
    default: break;
  }
}

float sum_row_max_avx512(const PackedQuery& q, const float* row_max) {
  float score = 0.0f;
  for (int64_t row = 0; row < q.n_rows; ++row) score += row_max[row];
  return score;
}

void half_to_float_avx512(const uint16_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m256i halves = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(halves));
  }
  for (; i < count; ++i) dst[i] = _cvtsh_ss(src[i]);
}

}  // namespace

float maxsim_f32_avx512(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                        KernelScratch* scratch) {
  std::fill(scratch->row_max.begin(), scratch->row_max.end(),
            -std::numeric_limits<float>::infinity());
  float* row_max = scratch->row_max.data();
  int64_t t = 0;
  for (; t + kTileAvx512 <= n_tokens; t += kTileAvx512) {
    all_blocks_avx512<kTileAvx512>(q, tokens + t * q.dim, row_max);
  }
  tail_avx512(q, tokens + t * q.dim, n_tokens - t, row_max);
  return sum_row_max_avx512(q, row_max);
}

float maxsim_f16_avx512(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                        KernelScratch* scratch) {
  std::fill(scratch->row_max.begin(), scratch->row_max.end(),
            -std::numeric_limits<float>::infinity());
  float* row_max = scratch->row_max.data();
  float* tile = scratch->tile.data();
  for (int64_t t = 0; t < n_tokens; t += kTileAvx512) {
    const int64_t n_tile = n_tokens - t < kTileAvx512 ? n_tokens - t : kTileAvx512;
    half_to_float_avx512(tokens + t * q.dim, n_tile * q.dim, tile);
    if (n_tile == kTileAvx512) {
      all_blocks_avx512<kTileAvx512>(q, tile, row_max);
    } else {
      tail_avx512(q, tile, n_tile, row_max);
    }
  }
  return sum_row_max_avx512(q, row_max);
}

}  // namespace gingham
