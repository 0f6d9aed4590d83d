// Per-ISA MaxSim kernels over one document, and the packed query they share.
//
//   score(q, D) = sum_i max_j <q_i, d_j>     q: Lq x dim (float32), D: Ld x dim
//
// D is float32, fp16 (IEEE binary16 bit patterns) or int8 with one float32 scale per token
// (d_j = scale_j * values_j; see gingham/quantize.h).
//
// The query is packed once per call into blocks of kQueryBlock rows, dimension-major inside a
// block, zero rows padding the last block, 64-byte aligned:
//
//   packed[b][k][r] = q[b * kQueryBlock + r][k]       b < n_blocks, k < dim, r < kQueryBlock
//
// so one SIMD load at (b, k) yields dimension k of 8/16 consecutive query rows. A kernel walks a
// document in tiles of a fixed number of tokens, broadcasting one token value per FMA, and keeps
// the kQueryBlock x tile similarity block in registers; only the running max per query row
// touches memory. The Lq x Ld similarity matrix is never written. A last, partial tile repeats
// its last token instead of running a narrower (slower) tile: max is idempotent, so the result
// is the same. fp16 and int8 tiles are widened to float32 in a small per-thread buffer first;
// int8 tiles multiply each token's accumulators by its scale before the max.
//
// Non-finite probe: besides the maxima, every kernel that sets MaxSimKernels::probes_nonfinite
// adds acc * 0 for every similarity accumulator it computes (0 for a finite value, NaN for
// NaN / +-inf) and sets KernelScratch::saw_nonfinite when the sum is NaN. A NaN or inf in a token
// makes every dot product with it NaN or +-inf (q * NaN = NaN, q * inf = +-inf or NaN for q = 0,
// and no later addition turns it finite), so such a token always sets the flag, even where max
// would drop it (a -inf or NaN similarity that is not a row's maximum). Finite tokens set it only
// when a similarity overflows. The probe costs one FMA per accumulator per tile (1/dim of the
// tile's FMAs); the validated entry points scan the tokens only when the flag is set.
//
// Precision: products and sums in float32; the per-row maxima are summed in row order in float32,
// so a score does not depend on threads or scheduling. SIMD levels differ from the scalar
// reference only by the order of the dot-product additions (relative error ~ dim * 2^-24).
//
// Each ISA file defines its own function names (and keeps helpers in an anonymous namespace), so
// the linker can never hand a baseline caller a copy of a helper compiled with wider instructions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace gingham {

constexpr int64_t kQueryBlock = 16;
// Widest token tile any kernel uses (the fp16/int8 conversion buffer holds this many tokens).
constexpr int64_t kMaxTileTokens = 16;

// std::allocator with 64-byte alignment: packed query rows and tiles never straddle cache lines.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, kAlign); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};
using AlignedFloats = std::vector<float, AlignedAllocator<float>>;

struct PackedQuery {
  AlignedFloats data;  // n_blocks * dim * kQueryBlock
  int64_t n_rows = 0;
  int64_t n_blocks = 0;
  int64_t dim = 0;
};

PackedQuery pack_query(const float* query, int64_t n_rows, int64_t dim);

// Scratch a kernel may use, sized by prepare_scratch once per thread.
struct KernelScratch {
  AlignedFloats row_max;  // n_blocks * kQueryBlock
  AlignedFloats tile;     // widened fp16/int8 tile: kMaxTileTokens * dim
  // Set (never cleared) by a probing kernel that met a NaN / inf similarity; the caller clears it.
  bool saw_nonfinite = false;
};
void prepare_scratch(const PackedQuery& q, KernelScratch* scratch);

// One document's score. n_tokens >= 1.
using MaxSimF32Fn = float (*)(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                              KernelScratch* scratch);
using MaxSimF16Fn = float (*)(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                              KernelScratch* scratch);
// int8 tokens: values (n_tokens x dim) and scales (n_tokens); token j = scales[j] * values[j].
using MaxSimI8Fn = float (*)(const PackedQuery& q, const int8_t* tokens, const float* scales,
                             int64_t n_tokens, KernelScratch* scratch);

struct MaxSimKernels {
  MaxSimF32Fn f32;
  MaxSimF16Fn f16;
  MaxSimI8Fn i8;
  // The kernels set KernelScratch::saw_nonfinite (the probe above). False for a level whose
  // kernels do not probe: callers then treat every call as having seen a non-finite value.
  bool probes_nonfinite;
};

// The table for the level in use is kernels().maxsim (kernels/kernels.h).

float maxsim_f32_scalar(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                        KernelScratch* scratch);
float maxsim_f16_scalar(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                        KernelScratch* scratch);
float maxsim_i8_scalar(const PackedQuery& q, const int8_t* tokens, const float* scales,
                       int64_t n_tokens, KernelScratch* scratch);
float maxsim_f32_avx2(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                      KernelScratch* scratch);
float maxsim_f16_avx2(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                      KernelScratch* scratch);
float maxsim_i8_avx2(const PackedQuery& q, const int8_t* tokens, const float* scales,
                     int64_t n_tokens, KernelScratch* scratch);
float maxsim_f32_avx512(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                        KernelScratch* scratch);
float maxsim_f16_avx512(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                        KernelScratch* scratch);
float maxsim_i8_avx512(const PackedQuery& q, const int8_t* tokens, const float* scales,
                       int64_t n_tokens, KernelScratch* scratch);
float maxsim_f32_neon(const PackedQuery& q, const float* tokens, int64_t n_tokens,
                      KernelScratch* scratch);
float maxsim_f16_neon(const PackedQuery& q, const uint16_t* tokens, int64_t n_tokens,
                      KernelScratch* scratch);
float maxsim_i8_neon(const PackedQuery& q, const int8_t* tokens, const float* scales,
                     int64_t n_tokens, KernelScratch* scratch);

}  // namespace gingham
