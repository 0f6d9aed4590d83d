// Symmetric per-token int8 quantization of token embeddings.
//
//   scale_j  = max_k |x_jk| / 127            (0 for an all-zero token)
//   value_jk = round_half_even(x_jk / scale_j), in [-127, 127]   (-128 is never produced)
//   x_jk    ~= scale_j * value_jk,  |error| <= scale_j / 2
//
// Per-token (not per-dimension) scales keep MaxSim cheap: a document token's dot product with
// any query row is scale_j * <q, value_j>, one multiply per tile accumulator.
#pragma once

#include <cstdint>

namespace gingham {

// tokens: n_tokens x dim float32 (finite), values: n_tokens x dim, scales: n_tokens.
// Parallel over tokens.
void quantize_int8(const float* tokens, int64_t n_tokens, int64_t dim, int8_t* values,
                   float* scales);

}  // namespace gingham
