// NEON MaxSim (aarch64, where NEON is architectural). Register tile: 16 query rows (four
// float32x4) x 6 tokens = 24 accumulators of the 32 vector registers. Same packed query and the
// same repeat-the-last-token rule for partial tiles as the x86 files (see maxsim_kernels.h).
#include <arm_neon.h>

#include <algorithm>
#include <limits>

#include "gingham/half.h"
#include "gingham/kernels/maxsim_kernels.h"

namespace gingham {
namespace {

constexpr int kTileNeon = 6;

struct TileNeon {
  const float* row[kTileNeon];
  float scale[kTileNeon];
};

void set_rows_neon(const float* first, int64_t n_valid, int64_t dim, TileNeon* tile) {
  for (int t = 0; t < kTileNeon; ++t) tile->row[t] = first + (t < n_valid ? t : n_valid - 1) * dim;
}

template <bool kScaled>
inline void block_tile_neon(const float* packed_block, const TileNeon& tile, int64_t dim,
                            float* row_max) {
  float32x4_t acc[kTileNeon][4];
#pragma GCC unroll 6
  for (int t = 0; t < kTileNeon; ++t)
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) acc[t][r] = vdupq_n_f32(0.0f);
  for (int64_t k = 0; k < dim; ++k) {
    float32x4_t qv[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) qv[r] = vld1q_f32(packed_block + k * kQueryBlock + 4 * r);
#pragma GCC unroll 6
    for (int t = 0; t < kTileNeon; ++t) {
      const float value = tile.row[t][k];
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) acc[t][r] = vfmaq_n_f32(acc[t][r], qv[r], value);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
    float32x4_t m = vld1q_f32(row_max + 4 * r);
#pragma GCC unroll 6
    for (int t = 0; t < kTileNeon; ++t) {
      m = vmaxq_f32(m, kScaled ? vmulq_n_f32(acc[t][r], tile.scale[t]) : acc[t][r]);
    }
    vst1q_f32(row_max + 4 * r, m);
  }
}

template <bool kScaled>
void all_blocks_neon(const PackedQuery& q, const TileNeon& tile, float* row_max) {
  for (int64_t b = 0; b < q.n_blocks; ++b) {
    block_tile_neon<kScaled>(q.data.data() + b * q.dim * kQueryBlock, tile, q.dim,
                             row_max + b * kQueryBlock);
  }
}

float* reset_row_max_neon(KernelScratch* scratch) {
  std::fill(scratch->row_max.begin(), scratch->row_max.end(),
            -std::numeric_limits<float>::infinity());
  return scratch->row_max.data();
}

float sum_row_max_neon(const PackedQuery& q, const float* row_max) {
  float score = 0.0f;
  for (int64_t row = 0; row < q.n_rows; ++row) score += row_max[row];
  return score;
}

void half_to_float_neon(const uint16_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) {
    const float16x4_t halves = vreinterpret_f16_u16(vld1_u16(src + i));
    vst1q_f32(dst + i, vcvt_f32_f16(halves));
  }
  for (; i < count; ++i) dst[i] = half_to_float(src[i]);
}

void int8_to_float_neon(const int8_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const int16x8_t wide = vmovl_s8(vld1_s8(src + i));
    vst1q_f32(dst + i, vcvtq_f32_s32(vmovl_s16(vget_low_s16(wide))));
    vst1q_f32(dst + i + 4, vcvtq_f32_s32(vmovl_s16(vget_high_s16(wide))));
  }
  for (; i < count; ++i) dst[i] = static_cast<float>(src[i]);
}

}  // namespace

float maxsim_f32_neon(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                      KernelScratch* scratch) {
  float* row_max = reset_row_max_neon(scratch);
  TileNeon tile;
  for (int64_t t = 0; t < n_tokens; t += kTileNeon) {
    set_rows_neon(tokens + t * q.dim, std::min<int64_t>(kTileNeon, n_tokens - t), q.dim, &tile);
    all_blocks_neon<false>(q, tile, row_max);
  }
  return sum_row_max_neon(q, row_max);
}

float maxsim_f16_neon(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                      KernelScratch* scratch) {
  float* row_max = reset_row_max_neon(scratch);
  float* buffer = scratch->tile.data();
  TileNeon tile;
  for (int64_t t = 0; t < n_tokens; t += kTileNeon) {
    const int64_t n_valid = std::min<int64_t>(kTileNeon, n_tokens - t);
    half_to_float_neon(tokens + t * q.dim, n_valid * q.dim, buffer);
    set_rows_neon(buffer, n_valid, q.dim, &tile);
    all_blocks_neon<false>(q, tile, row_max);
  }
  return sum_row_max_neon(q, row_max);
}

float maxsim_i8_neon(const PackedQuery& q, const int8_t* tokens, const float* scales,
                     int64_t n_tokens, KernelScratch* scratch) {
  float* row_max = reset_row_max_neon(scratch);
  float* buffer = scratch->tile.data();
  TileNeon tile;
  for (int64_t t = 0; t < n_tokens; t += kTileNeon) {
    const int64_t n_valid = std::min<int64_t>(kTileNeon, n_tokens - t);
    int8_to_float_neon(tokens + t * q.dim, n_valid * q.dim, buffer);
    set_rows_neon(buffer, n_valid, q.dim, &tile);
    for (int i = 0; i < kTileNeon; ++i) tile.scale[i] = scales[t + (i < n_valid ? i : n_valid - 1)];
    all_blocks_neon<true>(q, tile, row_max);
  }
  return sum_row_max_neon(q, row_max);
}

}  // namespace gingham
