// Per-ISA MaxSim kernels over one document, and the packed query they share.
//
//   score(q, D) = sum_i max_j <q_i, d_j>     q: Lq x dim (float32), D: Ld x dim (fp32 or fp16)
//
// The query is packed once per call into blocks of kQueryBlock rows, dimension-major inside a
// block, zero rows padding the last block:
//
//   packed[b][k][r] = q[b * kQueryBlock + r][k]       b < n_blocks, k < dim, r < kQueryBlock
//
// so one SIMD load at (b, k) yields dimension k of 8/16 consecutive query rows. A kernel walks a
// document in small tiles of tokens, broadcasting one token value per FMA, and keeps the
// kQueryBlock x tile similarity block in registers; only the running max per query row touches
// memory. The Lq x Ld similarity matrix is never written.
//
// Precision: products and sums in float32; the per-row maxima are summed in row order in float32,
// so a score does not depend on threads or scheduling. SIMD levels differ from the scalar
// reference only by the order of the dot-product additions (relative error ~ dim * 2^-24).
//
// Each ISA file defines its own function names, so the linker can never hand a baseline caller
// a copy of a helper compiled with wider instructions.
#pragma once

#include <cstdint>
#include <vector>

namespace gingham {

constexpr int64_t kQueryBlock = 16;

struct PackedQuery {
  std::vector<float> data;  // n_blocks * dim * kQueryBlock
  int64_t n_rows = 0;
  int64_t n_blocks = 0;
  int64_t dim = 0;
};

PackedQuery pack_query(const float* query, int64_t n_rows, int64_t dim);

// Scratch a kernel may use, sized by the caller once per thread.
struct KernelScratch {
  std::vector<float> row_max;  // n_blocks * kQueryBlock
  std::vector<float> tile;     // converted fp16 tile: kMaxTileTokens * dim
};
constexpr int64_t kMaxTileTokens = 8;
void prepare_scratch(const PackedQuery& q, KernelScratch* scratch);

// One document's score. n_tokens >= 1; the fp16 tokens are IEEE binary16 bit patterns.
using MaxSimF32Fn = float (*)(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                              KernelScratch* scratch);
using MaxSimF16Fn = float (*)(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                              KernelScratch* scratch);

struct MaxSimKernels {
  MaxSimF32Fn f32;
  MaxSimF16Fn f16;
};

// Kernels for the level in use (gingham::simd_level()).
const MaxSimKernels& maxsim_kernels();

float maxsim_f32_scalar(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                        KernelScratch* scratch);
float maxsim_f16_scalar(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                        KernelScratch* scratch);
float maxsim_f32_avx2(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                      KernelScratch* scratch);
float maxsim_f16_avx2(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                      KernelScratch* scratch);
float maxsim_f32_avx512(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                        KernelScratch* scratch);
float maxsim_f16_avx512(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                        KernelScratch* scratch);
float maxsim_f32_neon(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                      KernelScratch* scratch);
float maxsim_f16_neon(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                      KernelScratch* scratch);

// IEEE binary16 -> float32 without any ISA extension (reference and tails).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);  // round to nearest even

}  // namespace gingham
