#include "gingham/topk.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace gingham {

int64_t select_topk(const float* scores, const int64_t* ids, int64_t n, int64_t k, float* out_scores,
                    int64_t* out_ids) {
  const int64_t n_out = std::min(k, n);
  if (n_out <= 0) return 0;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  auto better = [&](int64_t a, int64_t b) {
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    return ids[a] < ids[b];
  };
  if (n_out < n) std::nth_element(order.begin(), order.begin() + n_out - 1, order.end(), better);
  std::sort(order.begin(), order.begin() + n_out, better);
  for (int64_t i = 0; i < n_out; ++i) {
    out_scores[i] = scores[order[i]];
    out_ids[i] = ids[order[i]];
  }
  return n_out;
}

}  // namespace gingham
