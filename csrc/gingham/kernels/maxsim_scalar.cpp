// Scalar reference MaxSim: the oracle every SIMD level is tested against. Plain loops, dot
// products accumulated in dimension order.
#include <cmath>
#include <cstring>
#include <limits>

#include "gingham/half.h"
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

namespace {

// token_scale(t) multiplies token t's dot products (int8 storage); 1 for float tokens.
// Sets scratch->saw_nonfinite when some scaled dot product is NaN / inf (maxsim_kernels.h).
template <typename LoadToken, typename TokenScale>
float maxsim_reference(const PackedQuery& q, int64_t n_tokens, LoadToken token_value,
                       TokenScale token_scale, KernelScratch* scratch) {
  float score = 0.0f;
  float probe = 0.0f;  // dot * 0: stays 0 while every dot is finite, NaN after any other
  for (int64_t row = 0; row < q.n_rows; ++row) {
    const float* packed = q.data.data() + (row / kQueryBlock) * q.dim * kQueryBlock +
                          row % kQueryBlock;
    float best = -std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < n_tokens; ++t) {
      float dot = 0.0f;
      for (int64_t k = 0; k < q.dim; ++k) dot += packed[k * kQueryBlock] * token_value(t, k);
      dot *= token_scale(t);
      probe += dot * 0.0f;
      best = dot > best ? dot : best;
    }
    score += best;
  }
  if (std::isnan(probe)) scratch->saw_nonfinite = true;
  return score;
}

float unit_scale(int64_t) { return 1.0f; }

}  // namespace

float maxsim_f32_scalar(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                        KernelScratch* scratch) {
  const int64_t dim = q.dim;
  return maxsim_reference(
      q, n_tokens, [=](int64_t t, int64_t k) { return tokens[t * dim + k]; }, unit_scale,
      scratch);
}

float maxsim_f16_scalar(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                        KernelScratch* scratch) {
  const int64_t dim = q.dim;
  return maxsim_reference(
      q, n_tokens, [=](int64_t t, int64_t k) { return half_to_float(tokens[t * dim + k]); },
      unit_scale, scratch);
}

float maxsim_i8_scalar(const PackedQuery& q, const int8_t* tokens, const float* scales,
                       int64_t n_tokens, KernelScratch* scratch) {
  const int64_t dim = q.dim;
  return maxsim_reference(
      q, n_tokens, [=](int64_t t, int64_t k) { return static_cast<float>(tokens[t * dim + k]); },
      [=](int64_t t) { return scales[t]; }, scratch);
}

}  // namespace gingham
