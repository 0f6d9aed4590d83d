#include "gingham/topk.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace gingham {

int64_t select_topk(const float* scores, const int64_t* ids, int64_t n, int64_t k, float* out_scores,
                    int64_t* out_ids) {
  const int64_t n_out = std::min(k, n);
  if (n_out <= 0) return 0;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  // A strict weak order even with NaN scores (std::nth_element / std::sort need one): NaN sorts
  // after every number, NaNs among themselves by id.
  auto better = [&](int64_t a, int64_t b) {
    const float sa = scores[a], sb = scores[b];
    const bool nan_a = std::isnan(sa), nan_b = std::isnan(sb);
    if (nan_a != nan_b) return nan_b;
    if (!nan_a && sa != sb) return sa > sb;
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
