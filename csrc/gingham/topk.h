// Deterministic top-k: highest score first, ties broken by the lower id; NaN scores rank after
// every number (among themselves by id).
#pragma once

#include <cstdint>

namespace gingham {

// Selects the min(k, n) best (score, id) pairs among n candidates (ids unique) and writes them,
// best first, to out_scores / out_ids. Returns the number written. O(n + k log k).
int64_t select_topk(const float* scores, const int64_t* ids, int64_t n, int64_t k, float* out_scores,
                    int64_t* out_ids);

}  // namespace gingham
