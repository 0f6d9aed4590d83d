// NEON MaxSim (aarch64, where NEON is architectural). Register tile: 16 query rows (four
// float32x4) x NT <= 6 tokens = 24 accumulators of the 32 vector registers.
#include <arm_neon.h>

#include <algorithm>
#include <limits>

#include "gingham/kernels/maxsim_kernels.h"

namespace gingham {
namespace {

constexpr int kTileNeon = 6;

template <int NT>
inline void tile_neon(const float* packed_block, const float* tokens, int64_t dim,
                      float* row_max) {
  float32x4_t acc[NT][4];
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < 4; ++r) acc[t][r] = vdupq_n_f32(0.0f);
  for (int64_t k = 0; k < dim; ++k) {
    float32x4_t qv[4];
    for (int r = 0; r < 4; ++r) qv[r] = vld1q_f32(packed_block + k * kQueryBlock + 4 * r);
    for (int t = 0; t < NT; ++t) {
      const float value = tokens[t * dim + k];
      for (int r = 0; r < 4; ++r) acc[t][r] = vfmaq_n_f32(acc[t][r], qv[r], value);
    }
  }
  for (int r = 0; r < 4; ++r) {
    float32x4_t m = vld1q_f32(row_max + 4 * r);
    for (int t = 0; t < NT; ++t) m = vmaxq_f32(m, acc[t][r]);
    vst1q_f32(row_max + 4 * r, m);
  }
}

template <int NT>
inline void all_blocks_neon(const PackedQuery& q, const float* tokens, float* row_max) {
  for (int64_t b = 0; b < q.n_blocks; ++b) {
    tile_neon<NT>(q.data.data() + b * q.dim * kQueryBlock, tokens, q.dim,
                  row_max + b * kQueryBlock);
  }
}

void tail_neon(const PackedQuery& q, const float* tokens, int64_t n_tail, float* row_max) {
  switch (n_tail) {
    case 1: all_blocks_neon<1>(q, tokens, row_max); break;
    case 2: all_blocks_neon<2>(q, tokens, row_max); break;
    case 3: all_blocks_neon<3>(q, tokens, row_max); break;
    case 4: all_blocks_neon<4>(q, tokens, row_max); break;
    case 5: all_blocks_neon<5>(q, tokens, row_max); break;
    default: break;
  }
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

}  // namespace

float maxsim_f32_neon(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                      KernelScratch* scratch) {
  std::fill(scratch->row_max.begin(), scratch->row_max.end(),
            -std::numeric_limits<float>::infinity());
  float* row_max = scratch->row_max.data();
  int64_t t = 0;
  for (; t + kTileNeon <= n_tokens; t += kTileNeon) {
    all_blocks_neon<kTileNeon>(q, tokens + t * q.dim, row_max);
  }
  tail_neon(q, tokens + t * q.dim, n_tokens - t, row_max);
  return sum_row_max_neon(q, row_max);
}

float maxsim_f16_neon(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                      KernelScratch* scratch) {
  std::fill(scratch->row_max.begin(), scratch->row_max.end(),
            -std::numeric_limits<float>::infinity());
  float* row_max = scratch->row_max.data();
  float* tile = scratch->tile.data();
  for (int64_t t = 0; t < n_tokens; t += kTileNeon) {
    const int64_t n_tile = n_tokens - t < kTileNeon ? n_tokens - t : kTileNeon;
    half_to_float_neon(tokens + t * q.dim, n_tile * q.dim, tile);
    if (n_tile == kTileNeon) {
      all_blocks_neon<kTileNeon>(q, tile, row_max);
    } else {
      tail_neon(q, tile, n_tile, row_max);
    }
  }
  return sum_row_max_neon(q, row_max);
}

}  // namespace gingham
