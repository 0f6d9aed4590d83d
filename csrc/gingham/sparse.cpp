#include "gingham/sparse.h"

#include <vector>

#include "gingham/topk.h"

namespace gingham {

int64_t posting_scores(const float* weights, const int32_t* doc_ids, const int64_t* term_offsets,
                       const int64_t* terms, int64_t n_query_terms, int64_t n_docs,
                       float* scores) {
  for (int64_t d = 0; d < n_docs; ++d) scores[d] = 0.0f;
  for (int64_t i = 0; i < n_query_terms; ++i) {
    const int64_t end = term_offsets[terms[i] + 1];
    for (int64_t p = term_offsets[terms[i]]; p < end; ++p) {
      const int32_t d = doc_ids[p];
      if (d < 0 || d >= n_docs) return p;
      scores[d] += weights[p];
    }
  }
  return -1;
}

int64_t top_positive(const float* scores, int64_t n, int64_t k, float* out_scores,
                     int64_t* out_rows) {
  std::vector<int64_t> rows;
  std::vector<float> values;
  for (int64_t r = 0; r < n; ++r) {
    if (scores[r] > 0.0f) {  // false for NaN: such a row is never ranked
      rows.push_back(r);
      values.push_back(scores[r]);
    }
  }
  return select_topk(values.data(), rows.data(), static_cast<int64_t>(rows.size()), k, out_scores,
                     out_rows);
}

}  // namespace gingham
