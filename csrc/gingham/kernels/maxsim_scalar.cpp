// Scalar reference MaxSim: the oracle every SIMD level is tested against. Plain loops, dot
// products accumulated in dimension order.
#include <cmath>
#include <cstring>
#include <limits>

#include "gingham/kernels/maxsim_kernels.h"

namespace gingham {

PackedQuery pack_query(const float* query, int64_t n_rows, int64_t dim) {
  PackedQuery q;
  q.n_rows = n_rows;
  q.dim = dim;
  q.n_blocks = (n_rows + kQueryBlock - 1) / kQueryBlock;
  q.data.assign(static_cast<size_t>(q.n_blocks * dim * kQueryBlock), 0.0f);
  for (int64_t row = 0; row < n_rows; ++row) {
    const int64_t block = row / kQueryBlock, lane = row % kQueryBlock;
    float* dst = q.data.data() + block * dim * kQueryBlock + lane;
    for (int64_t k = 0; k < dim; ++k) dst[k * kQueryBlock] = query[row * dim + k];
  }
  return q;
}

void prepare_scratch(const PackedQuery& q, KernelScratch* scratch) {
  scratch->row_max.resize(static_cast<size_t>(q.n_blocks * kQueryBlock));
  scratch->tile.resize(static_cast<size_t>(kMaxTileTokens * q.dim));
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  float value;
  if (exponent == 0) {
    value = std::ldexp(static_cast<float>(mantissa), -24);  // zero or subnormal
  } else if (exponent == 31) {
    value = mantissa ? std::numeric_limits<float>::quiet_NaN()
                     : std::numeric_limits<float>::infinity();
  } else {
    value = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  }
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  bits |= sign;
  std::memcpy(&value, &bits, sizeof(bits));
  return value;
}

uint16_t float_to_half(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits >= 0x7f800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (abs_bits > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs_bits >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow
  if (abs_bits < 0x38800000u) {  // result is subnormal or zero: round at 2^-24 granularity
    float magnitude;
    std::memcpy(&magnitude, &abs_bits, sizeof(magnitude));
    const float scaled = std::nearbyint(magnitude * 16777216.0f);  // round-half-even
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(scaled));
  }
  // Normal: drop 13 mantissa bits with round-to-nearest-even.
  const uint32_t rounded = abs_bits + 0xfffu + ((abs_bits >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

namespace {

// token_scale(t) multiplies token t's dot products (int8 storage); 1 for float tokens.
template <typename LoadToken, typename TokenScale>
float maxsim_reference(const PackedQuery& q, int64_t n_tokens, LoadToken token_value,
                       TokenScale token_scale) {
  float score = 0.0f;
  for (int64_t row = 0; row < q.n_rows; ++row) {
    const float* packed = q.data.data() + (row / kQueryBlock) * q.dim * kQueryBlock +
                          row % kQueryBlock;
    float best = -std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < n_tokens; ++t) {
      float dot = 0.0f;
      for (int64_t k = 0; k < q.dim; ++k) dot += packed[k * kQueryBlock] * token_value(t, k);
      dot *= token_scale(t);
      best = dot > best ? dot : best;
    }
    score += best;
  }
  return score;
}

float unit_scale(int64_t) { return 1.0f; }

}  // namespace

float maxsim_f32_scalar(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                        KernelScratch*) {
  const int64_t dim = q.dim;
  return maxsim_reference(
      q, n_tokens, [=](int64_t t, int64_t k) { return tokens[t * dim + k]; }, unit_scale);
}

float maxsim_f16_scalar(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                        KernelScratch*) {
  const int64_t dim = q.dim;
  return maxsim_reference(
      q, n_tokens, [=](int64_t t, int64_t k) { return half_to_float(tokens[t * dim + k]); },
      unit_scale);
}

float maxsim_i8_scalar(const PackedQuery& q, const int8_t* tokens, const float* scales,
                       int64_t n_tokens, KernelScratch*) {
  const int64_t dim = q.dim;
  return maxsim_reference(
      q, n_tokens, [=](int64_t t, int64_t k) { return static_cast<float>(tokens[t * dim + k]); },
      [=](int64_t t) { return scales[t]; });
}

}  // namespace gingham
