// AVX-512 (F/BW/DQ/VL) MaxSim. Compiled with AVX-512 flags on this file only; reached only when
// cpuid and XCR0 report AVX-512 state.
//
// Register tile: NB <= 2 query blocks (one zmm = 16 rows each) x 8 tokens = 16 zmm accumulators;
// per dimension NB query loads + 8 broadcasts feed 8 * NB FMAs. Same packed query and the same
// repeat-the-last-token rule for partial tiles as the AVX2 file (see maxsim_kernels.h).
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "gingham/half.h"
#include "gingham/kernels/maxsim_kernels.h"

namespace gingham {
namespace {

constexpr int kTileAvx512 = 8;

struct TileAvx512 {
  const float* row[kTileAvx512];
  float scale[kTileAvx512];
};

void set_rows_avx512(const float* first, int64_t n_valid, int64_t dim, TileAvx512* tile) {
  for (int t = 0; t < kTileAvx512; ++t) {
    tile->row[t] = first + (t < n_valid ? t : n_valid - 1) * dim;
  }
}

// Updates the row maxima of NB query blocks with the tile's 8 tokens, and adds every
// (scaled) accumulator times 0 to probe (NaN from then on if any is NaN / inf; maxsim_kernels.h).
template <int NB, bool kScaled>
inline void block_tile_avx512(const float* packed, const TileAvx512& tile, int64_t dim,
                              float* row_max, __m512* probe) {
  constexpr int NT = kTileAvx512;
  __m512 acc[NT][NB];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 2
    for (int b = 0; b < NB; ++b) acc[t][b] = _mm512_setzero_ps();
  for (int64_t k = 0; k < dim; ++k) {
    __m512 qv[NB];
#pragma GCC unroll 2
    for (int b = 0; b < NB; ++b) qv[b] = _mm512_load_ps(packed + (b * dim + k) * kQueryBlock);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const __m512 value = _mm512_set1_ps(tile.row[t][k]);
#pragma GCC unroll 2
      for (int b = 0; b < NB; ++b) acc[t][b] = _mm512_fmadd_ps(qv[b], value, acc[t][b]);
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  __m512 p = *probe;
#pragma GCC unroll 2
  for (int b = 0; b < NB; ++b) {
    float* dst = row_max + b * kQueryBlock;
    __m512 m = _mm512_load_ps(dst);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const __m512 a = kScaled ? _mm512_mul_ps(acc[t][b], _mm512_set1_ps(tile.scale[t]))
                               : acc[t][b];
      m = _mm512_max_ps(m, a);
      p = _mm512_fmadd_ps(a, zero, p);
    }
    _mm512_store_ps(dst, m);
  }
  *probe = p;
}

template <bool kScaled>
void all_blocks_avx512(const PackedQuery& q, const TileAvx512& tile, float* row_max,
                       __m512* probe) {
  const float* packed = q.data.data();
  const int64_t stride = q.dim * kQueryBlock;
  int64_t b = 0;
  for (; b + 2 <= q.n_blocks; b += 2) {
    block_tile_avx512<2, kScaled>(packed + b * stride, tile, q.dim, row_max + b * kQueryBlock,
                                      probe);
  }
  if (b < q.n_blocks) {
    block_tile_avx512<1, kScaled>(packed + b * stride, tile, q.dim, row_max + b * kQueryBlock,
                                      probe);
  }
}

float* reset_row_max_avx512(KernelScratch* scratch) {
  std::fill(scratch->row_max.begin(), scratch->row_max.end(),
            -std::numeric_limits<float>::infinity());
  return scratch->row_max.data();
}

// The score, after recording a NaN probe lane in scratch->saw_nonfinite.
float finish_avx512(const PackedQuery& q, const float* row_max, __m512 probe,
                    KernelScratch* scratch) {
  if (_mm512_cmp_ps_mask(probe, probe, _CMP_UNORD_Q) != 0) scratch->saw_nonfinite = true;
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

void int8_to_float_avx512(const int8_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm512_storeu_ps(dst + i, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)));
  }
  for (; i < count; ++i) dst[i] = static_cast<float>(src[i]);
}

}  // namespace

float maxsim_f32_avx512(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                        KernelScratch* scratch) {
  float* row_max = reset_row_max_avx512(scratch);
  __m512 probe = _mm512_setzero_ps();
  TileAvx512 tile;
  for (int64_t t = 0; t < n_tokens; t += kTileAvx512) {
    set_rows_avx512(tokens + t * q.dim, std::min<int64_t>(kTileAvx512, n_tokens - t), q.dim,
                    &tile);
    all_blocks_avx512<false>(q, tile, row_max, &probe);
  }
  return finish_avx512(q, row_max, probe, scratch);
}

float maxsim_f16_avx512(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                        KernelScratch* scratch) {
  float* row_max = reset_row_max_avx512(scratch);
  __m512 probe = _mm512_setzero_ps();
  float* buffer = scratch->tile.data();
  TileAvx512 tile;
  for (int64_t t = 0; t < n_tokens; t += kTileAvx512) {
    const int64_t n_valid = std::min<int64_t>(kTileAvx512, n_tokens - t);
    half_to_float_avx512(tokens + t * q.dim, n_valid * q.dim, buffer);
    set_rows_avx512(buffer, n_valid, q.dim, &tile);
    all_blocks_avx512<false>(q, tile, row_max, &probe);
  }
  return finish_avx512(q, row_max, probe, scratch);
}

float maxsim_i8_avx512(const PackedQuery& q, const int8_t* tokens, const float* scales,
                       int64_t n_tokens, KernelScratch* scratch) {
  float* row_max = reset_row_max_avx512(scratch);
  __m512 probe = _mm512_setzero_ps();
  float* buffer = scratch->tile.data();
  TileAvx512 tile;
  for (int64_t t = 0; t < n_tokens; t += kTileAvx512) {
    const int64_t n_valid = std::min<int64_t>(kTileAvx512, n_tokens - t);
    int8_to_float_avx512(tokens + t * q.dim, n_valid * q.dim, buffer);
    set_rows_avx512(buffer, n_valid, q.dim, &tile);
    for (int i = 0; i < kTileAvx512; ++i) {
      tile.scale[i] = scales[t + (i < n_valid ? i : n_valid - 1)];
    }
    all_blocks_avx512<true>(q, tile, row_max, &probe);
  }
  return finish_avx512(q, row_max, probe, scratch);
}

}  // namespace gingham
