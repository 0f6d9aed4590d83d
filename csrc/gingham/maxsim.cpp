#include "gingham/maxsim.h"

#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "gingham/kernels/maxsim_kernels.h"
#include "gingham/threads.h"
#include "gingham/topk.h"

namespace gingham {
namespace {

constexpr float kEmptyScore = -std::numeric_limits<float>::infinity();

float score_document(const MaxSimKernels& kernels, const PackedQuery& q, const DocTokens& docs,
                     int64_t doc, KernelScratch* scratch) {
  const int64_t begin = docs.doc_offsets[doc], n_tokens = docs.doc_offsets[doc + 1] - begin;
  if (n_tokens <= 0) return kEmptyScore;
  if (docs.dtype == TokenDtype::F16) {
    return kernels.f16(q, static_cast<const uint16_t*>(docs.tokens) + begin * docs.dim,
                       n_tokens, scratch);
  }
  if (docs.dtype == TokenDtype::I8) {
    return kernels.i8(q, static_cast<const int8_t*>(docs.tokens) + begin * docs.dim,
                      docs.token_scales + begin, n_tokens, scratch);
  }
  return kernels.f32(q, static_cast<const float*>(docs.tokens) + begin * docs.dim, n_tokens,
                     scratch);
}

// Scores documents doc_ids[0..n) (or 0..n when doc_ids is null) on the configured threads.
void score_documents(const PackedQuery& q, const DocTokens& docs, const int64_t* doc_ids,
                     int64_t n, float* scores, bool parallel) {
  const MaxSimKernels& kernels = maxsim_kernels();
#pragma omp parallel num_threads(get_num_threads()) if (parallel && n > 1)
  {
    KernelScratch scratch;
    prepare_scratch(q, &scratch);
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
      scores[i] = score_document(kernels, q, docs, doc_ids ? doc_ids[i] : i, &scratch);
    }
  }
}

void topk_of_query(const PackedQuery& q, const DocTokens& docs,
                   const std::vector<int64_t>& nonempty, int64_t k, bool parallel,
                   std::vector<float>* scores, float* out_scores, int64_t* out_ids) {
  const int64_t n = static_cast<int64_t>(nonempty.size());
  scores->resize(static_cast<size_t>(n));
  score_documents(q, docs, nonempty.data(), n, scores->data(), parallel);
  select_topk(scores->data(), nonempty.data(), n, k, out_scores, out_ids);
}

}  // namespace

void maxsim_scores(const float* query, int64_t n_query_tokens, const DocTokens& docs,
                   float* scores) {
  const PackedQuery q = pack_query(query, n_query_tokens, docs.dim);
  score_documents(q, docs, nullptr, docs.n_docs, scores, true);
}

void maxsim_scores_subset(const float* query, int64_t n_query_tokens, const DocTokens& docs,
                          const int64_t* doc_ids, int64_t n_ids, float* scores) {
  const PackedQuery q = pack_query(query, n_query_tokens, docs.dim);
  score_documents(q, docs, doc_ids, n_ids, scores, true);
}

int64_t count_nonempty_docs(const int64_t* doc_offsets, int64_t n_docs) {
  int64_t count = 0;
  for (int64_t i = 0; i < n_docs; ++i) count += doc_offsets[i + 1] > doc_offsets[i];
  return count;
}

void exact_search(const float* queries, const int64_t* query_offsets, int64_t n_queries,
                  const DocTokens& docs, int64_t k, float* out_scores, int64_t* out_ids) {
  std::vector<int64_t> nonempty;
  nonempty.reserve(static_cast<size_t>(docs.n_docs));
  for (int64_t i = 0; i < docs.n_docs; ++i) {
    if (docs.doc_offsets[i + 1] > docs.doc_offsets[i]) nonempty.push_back(i);
  }
  const int64_t k_out = std::min<int64_t>(k, static_cast<int64_t>(nonempty.size()));
  const int n_threads = get_num_threads();
  auto pack = [&](int64_t qi) {
    return pack_query(queries + query_offsets[qi] * docs.dim,
                      query_offsets[qi + 1] - query_offsets[qi], docs.dim);
  };
  if (n_queries >= n_threads && n_threads > 1) {
#pragma omp parallel num_threads(n_threads)
    {
      std::vector<float> scores;
#pragma omp for schedule(dynamic, 1)
      for (int64_t qi = 0; qi < n_queries; ++qi) {
        topk_of_query(pack(qi), docs, nonempty, k, false, &scores, out_scores + qi * k_out,
                      out_ids + qi * k_out);
      }
    }
  } else {
    std::vector<float> scores;
    for (int64_t qi = 0; qi < n_queries; ++qi) {
      topk_of_query(pack(qi), docs, nonempty, k, true, &scores, out_scores + qi * k_out,
                    out_ids + qi * k_out);
    }
  }
}

}  // namespace gingham
