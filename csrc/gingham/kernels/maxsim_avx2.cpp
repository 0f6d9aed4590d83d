// AVX2 + FMA (+ F16C for fp16 tokens) MaxSim. Compiled with -mavx2 -mfma -mf16c on this file
// only; reached only when cpuid reports those features.
//
// Register tile: 16 query rows (two ymm of the packed block) x 6 document tokens = 12
// accumulators, plus 2 query registers and 1 broadcast: 15 of the 16 ymm registers. Per
// dimension: 2 query loads + 6 broadcasts (memory operands) feed 12 FMAs, so the loop is
// FMA-bound (Zen3/Haswell: 2 FMA and 2-3 load ports). The accumulators are named variables, not
// an array: GCC keeps a small array of __m256 in registers only sometimes, and spilling it every
// iteration costs 3x.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "gingham/half.h"
#include "gingham/kernels/maxsim_kernels.h"

namespace gingham {
namespace {

constexpr int kTileAvx2 = 6;

// Row pointers of one tile; a partial tile repeats its last token (max is idempotent).
struct TileAvx2 {
  const float* row[kTileAvx2];
  float scale[kTileAvx2];  // used only by int8 tiles
};

void set_rows_avx2(const float* first, int64_t n_valid, int64_t dim, TileAvx2* tile) {
  for (int t = 0; t < kTileAvx2; ++t) {
    tile->row[t] = first + (t < n_valid ? t : n_valid - 1) * dim;
  }
}

#define GINGHAM_AVX2_TOKEN(t)                                     \
  {                                                               \
    const __m256 v = _mm256_broadcast_ss(p##t + k);               \
    a##t##0 = _mm256_fmadd_ps(q0, v, a##t##0);                    \
    a##t##1 = _mm256_fmadd_ps(q1, v, a##t##1);                    \
  }

// Updates row_max[0..15] of one query block with the maxima over the tile's 6 tokens, and adds
// every accumulator times 0 to probe (NaN from then on if any is NaN / inf; maxsim_kernels.h).
template <bool kScaled>
inline void block_tile_avx2(const float* packed_block, const TileAvx2& tile, int64_t dim,
                            float* row_max, __m256* probe) {
  const float *p0 = tile.row[0], *p1 = tile.row[1], *p2 = tile.row[2];
  const float *p3 = tile.row[3], *p4 = tile.row[4], *p5 = tile.row[5];
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
  __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
  const float* qk = packed_block;
  for (int64_t k = 0; k < dim; ++k, qk += kQueryBlock) {
    const __m256 q0 = _mm256_load_ps(qk);
    const __m256 q1 = _mm256_load_ps(qk + 8);
    GINGHAM_AVX2_TOKEN(0)
    GINGHAM_AVX2_TOKEN(1)
    GINGHAM_AVX2_TOKEN(2)
    GINGHAM_AVX2_TOKEN(3)
    GINGHAM_AVX2_TOKEN(4)
    GINGHAM_AVX2_TOKEN(5)
  }
  if (kScaled) {
#define GINGHAM_AVX2_SCALE(t)                                 \
  {                                                           \
    const __m256 s = _mm256_broadcast_ss(tile.scale + t);     \
    a##t##0 = _mm256_mul_ps(a##t##0, s);                      \
    a##t##1 = _mm256_mul_ps(a##t##1, s);                      \
  }
    GINGHAM_AVX2_SCALE(0)
    GINGHAM_AVX2_SCALE(1)
    GINGHAM_AVX2_SCALE(2)
    GINGHAM_AVX2_SCALE(3)
    GINGHAM_AVX2_SCALE(4)
    GINGHAM_AVX2_SCALE(5)
#undef GINGHAM_AVX2_SCALE
  }
  {
    const __m256 zero = _mm256_setzero_ps();
    __m256 p0 = _mm256_fmadd_ps(a00, zero, *probe), p1 = _mm256_mul_ps(a01, zero);
    p0 = _mm256_fmadd_ps(a10, zero, p0);
    p1 = _mm256_fmadd_ps(a11, zero, p1);
    p0 = _mm256_fmadd_ps(a20, zero, p0);
    p1 = _mm256_fmadd_ps(a21, zero, p1);
    p0 = _mm256_fmadd_ps(a30, zero, p0);
    p1 = _mm256_fmadd_ps(a31, zero, p1);
    p0 = _mm256_fmadd_ps(a40, zero, p0);
    p1 = _mm256_fmadd_ps(a41, zero, p1);
    p0 = _mm256_fmadd_ps(a50, zero, p0);
    p1 = _mm256_fmadd_ps(a51, zero, p1);
    *probe = _mm256_add_ps(p0, p1);
  }
  __m256 m0 = _mm256_max_ps(_mm256_max_ps(a00, a10), _mm256_max_ps(a20, a30));
  __m256 m1 = _mm256_max_ps(_mm256_max_ps(a01, a11), _mm256_max_ps(a21, a31));
  m0 = _mm256_max_ps(m0, _mm256_max_ps(a40, a50));
  m1 = _mm256_max_ps(m1, _mm256_max_ps(a41, a51));
  _mm256_store_ps(row_max, _mm256_max_ps(_mm256_load_ps(row_max), m0));
  _mm256_store_ps(row_max + 8, _mm256_max_ps(_mm256_load_ps(row_max + 8), m1));
}

#undef GINGHAM_AVX2_TOKEN

template <bool kScaled>
inline void all_blocks_avx2(const PackedQuery& q, const TileAvx2& tile, float* row_max,
                            __m256* probe) {
  const int64_t block_stride = q.dim * kQueryBlock;
  const float* packed = q.data.data();
  for (int64_t b = 0; b < q.n_blocks; ++b) {
    block_tile_avx2<kScaled>(packed + b * block_stride, tile, q.dim, row_max + b * kQueryBlock,
                             probe);
  }
}

// Asks for later tiles' bytes while this one computes: into L1 two tiles ahead, into L2 eight
// tiles ahead. Without it fp32 tiles ran at ~2/3 of the fp16 speed (a tile reads its rows as
// 6 strided streams, which the hardware prefetchers follow poorly). Farther L1 distances crowd
// the packed query (16 KiB for Lq = 32, d = 128) out of the 32 KiB L1.
inline void prefetch_tiles_avx2(const void* tokens, int64_t t, int64_t token_bytes) {
  const int64_t tile_bytes = kTileAvx2 * token_bytes;
  const char* near = static_cast<const char*>(tokens) + (t + 2 * kTileAvx2) * token_bytes;
  const char* far = static_cast<const char*>(tokens) + (t + 8 * kTileAvx2) * token_bytes;
  for (int64_t i = 0; i < tile_bytes; i += 64) _mm_prefetch(near + i, _MM_HINT_T0);
  for (int64_t i = 0; i < tile_bytes; i += 64) _mm_prefetch(far + i, _MM_HINT_T1);
}

float* reset_row_max_avx2(KernelScratch* scratch) {
  std::fill(scratch->row_max.begin(), scratch->row_max.end(),
            -std::numeric_limits<float>::infinity());
  return scratch->row_max.data();
}

// The score, after recording a NaN probe lane in scratch->saw_nonfinite.
float finish_avx2(const PackedQuery& q, const float* row_max, __m256 probe,
                  KernelScratch* scratch) {
  if (_mm256_movemask_ps(_mm256_cmp_ps(probe, probe, _CMP_UNORD_Q)) != 0) {
    scratch->saw_nonfinite = true;
  }
  float score = 0.0f;
  for (int64_t row = 0; row < q.n_rows; ++row) score += row_max[row];
  return score;
}

void half_to_float_avx2(const uint16_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_store_ps(dst + i, _mm256_cvtph_ps(halves));
  }
  for (; i < count; ++i) dst[i] = _cvtsh_ss(src[i]);
}

void int8_to_float_avx2(const int8_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i));
    _mm256_store_ps(dst + i, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)));
  }
  for (; i < count; ++i) dst[i] = static_cast<float>(src[i]);
}

}  // namespace

float maxsim_f32_avx2(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                      KernelScratch* scratch) {
  float* row_max = reset_row_max_avx2(scratch);
  __m256 probe = _mm256_setzero_ps();
  TileAvx2 tile;
  for (int64_t t = 0; t < n_tokens; t += kTileAvx2) {
    set_rows_avx2(tokens + t * q.dim, std::min<int64_t>(kTileAvx2, n_tokens - t), q.dim, &tile);
    prefetch_tiles_avx2(tokens, t, q.dim * 4);
    all_blocks_avx2<false>(q, tile, row_max, &probe);
  }
  return finish_avx2(q, row_max, probe, scratch);
}

float maxsim_f16_avx2(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                      KernelScratch* scratch) {
  float* row_max = reset_row_max_avx2(scratch);
  __m256 probe = _mm256_setzero_ps();
  float* buffer = scratch->tile.data();
  TileAvx2 tile;
  for (int64_t t = 0; t < n_tokens; t += kTileAvx2) {
    const int64_t n_valid = std::min<int64_t>(kTileAvx2, n_tokens - t);
    prefetch_tiles_avx2(tokens, t, q.dim * 2);
    half_to_float_avx2(tokens + t * q.dim, n_valid * q.dim, buffer);
    set_rows_avx2(buffer, n_valid, q.dim, &tile);
    all_blocks_avx2<false>(q, tile, row_max, &probe);
  }
  return finish_avx2(q, row_max, probe, scratch);
}

float maxsim_i8_avx2(const PackedQuery& q, const int8_t* tokens, const float* scales,
                     int64_t n_tokens, KernelScratch* scratch) {
  float* row_max = reset_row_max_avx2(scratch);
  __m256 probe = _mm256_setzero_ps();
  float* buffer = scratch->tile.data();
  TileAvx2 tile;
  for (int64_t t = 0; t < n_tokens; t += kTileAvx2) {
    const int64_t n_valid = std::min<int64_t>(kTileAvx2, n_tokens - t);
    prefetch_tiles_avx2(tokens, t, q.dim);
    int8_to_float_avx2(tokens + t * q.dim, n_valid * q.dim, buffer);
    set_rows_avx2(buffer, n_valid, q.dim, &tile);
    for (int i = 0; i < kTileAvx2; ++i) tile.scale[i] = scales[t + (i < n_valid ? i : n_valid - 1)];
    all_blocks_avx2<true>(q, tile, row_max, &probe);
  }
  return finish_avx2(q, row_max, probe, scratch);
}

}  // namespace gingham
