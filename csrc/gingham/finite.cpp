#include "gingham/finite.h"

#include <cstring>

#include "gingham/threads.h"

namespace gingham {
namespace {

// Parallel search in fixed chunks; the lowest bad index wins so the answer is deterministic.
template <typename IsBad>
int64_t first_bad(int64_t n, IsBad is_bad) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t n_chunks = (n + kChunk - 1) / kChunk;
  int64_t first = -1;
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) if (n_chunks > 1)
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t end = (c + 1) * kChunk < n ? (c + 1) * kChunk : n;
    // Branch-free count first (vectorizes); the exact index is searched only in a bad chunk.
    uint32_t n_bad = 0;
    for (int64_t i = c * kChunk; i < end; ++i) n_bad += is_bad(i);
    if (n_bad == 0) continue;
    for (int64_t i = c * kChunk; i < end; ++i) {
      if (is_bad(i)) {
#pragma omp critical(gingham_first_bad)
        if (first < 0 || i < first) first = i;
        break;
      }
    }
  }
  return first;
}

}  // namespace

int64_t first_nonfinite_f32(const float* values, int64_t n) {
  return first_bad(n, [values](int64_t i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof(bits));
    return static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  });
}

int64_t first_nonfinite_f16(const uint16_t* values, int64_t n) {
  return first_bad(n, [values](int64_t i) {
    return static_cast<uint32_t>((values[i] & 0x7c00u) == 0x7c00u);
  });
}

}  // namespace gingham
