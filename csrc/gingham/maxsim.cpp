#include "gingham/maxsim.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "gingham/kernels/kernels.h"
#include "gingham/omp_compat.h"
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

// What a scoring pass returns (maxsim.h): whether a kernel met a non-finite similarity, or the
// level's kernels cannot tell.
bool saw_nonfinite(const MaxSimKernels& kernels, bool flagged) {
  return flagged || !kernels.probes_nonfinite;
}

// Scores documents doc_ids[0..n) (or 0..n when doc_ids is null) on the configured threads.
bool score_documents(const PackedQuery& q, const DocTokens& docs, const int64_t* doc_ids,
                     int64_t n, float* scores, bool parallel) {
  const MaxSimKernels& kernels = gingham::kernels().maxsim;
  ParallelErrors errors;
  bool flagged = false;
#pragma omp parallel num_threads(get_num_threads()) if (parallel && n > 1) \
    reduction(|| : flagged)
  {
    KernelScratch scratch;
    errors.run([&] { prepare_scratch(q, &scratch); });
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
      errors.run([&] {
        scores[i] = score_document(kernels, q, docs, doc_ids ? doc_ids[i] : i, &scratch);
      });
    }
    flagged = flagged || scratch.saw_nonfinite;
  }
  errors.rethrow();
  return saw_nonfinite(kernels, flagged);
}

bool topk_of_query(const PackedQuery& q, const DocTokens& docs,
                   const std::vector<int64_t>& nonempty, int64_t k, bool parallel,
                   std::vector<float>* scores, float* out_scores, int64_t* out_ids) {
  const int64_t n = static_cast<int64_t>(nonempty.size());
  scores->resize(static_cast<size_t>(n));
  const bool flagged = score_documents(q, docs, nonempty.data(), n, scores->data(), parallel);
  select_topk(scores->data(), nonempty.data(), n, k, out_scores, out_ids);
  return flagged;
}

// Batch search keeps at most this many scores (64 MiB) in memory at once.
constexpr int64_t kMaxGroupScores = int64_t{1} << 24;
// Token bytes per chunk of documents in batch search: well inside a 512 KiB L2 with the packed
// queries beside it.
constexpr int64_t kChunkBytes = int64_t{192} << 10;

// Boundaries (indices into nonempty) of consecutive document runs of about kChunkBytes.
std::vector<int64_t> document_chunks(const DocTokens& docs, const std::vector<int64_t>& nonempty) {
  const int64_t token_bytes =
      docs.dim * (docs.dtype == TokenDtype::F32 ? 4 : docs.dtype == TokenDtype::F16 ? 2 : 1);
  std::vector<int64_t> bounds{0};
  int64_t bytes = 0;
  for (size_t j = 0; j < nonempty.size(); ++j) {
    const int64_t doc = nonempty[j];
    bytes += (docs.doc_offsets[doc + 1] - docs.doc_offsets[doc]) * token_bytes;
    if (bytes >= kChunkBytes) {
      bounds.push_back(static_cast<int64_t>(j) + 1);
      bytes = 0;
    }
  }
  if (bounds.back() != static_cast<int64_t>(nonempty.size())) {
    bounds.push_back(static_cast<int64_t>(nonempty.size()));
  }
  return bounds;
}

}  // namespace

bool maxsim_scores(const float* query, int64_t n_query_tokens, const DocTokens& docs,
                   float* scores) {
  const PackedQuery q = pack_query(query, n_query_tokens, docs.dim);
  return score_documents(q, docs, nullptr, docs.n_docs, scores, true);
}

bool maxsim_scores_subset(const float* query, int64_t n_query_tokens, const DocTokens& docs,
                          const int64_t* doc_ids, int64_t n_ids, float* scores) {
  const PackedQuery q = pack_query(query, n_query_tokens, docs.dim);
  return score_documents(q, docs, doc_ids, n_ids, scores, true);
}

int64_t count_nonempty_docs(const int64_t* doc_offsets, int64_t n_docs) {
  int64_t count = 0;
  for (int64_t i = 0; i < n_docs; ++i) count += doc_offsets[i + 1] > doc_offsets[i];
  return count;
}

namespace {

// Top-k over the listed documents `nonempty` (ascending, every one non-empty).
bool exact_search_docs(const float* queries, const int64_t* query_offsets, int64_t n_queries,
                       const DocTokens& docs, const std::vector<int64_t>& nonempty, int64_t k,
                       float* out_scores, int64_t* out_ids) {
  const int64_t n = static_cast<int64_t>(nonempty.size());
  const int64_t k_out = std::min<int64_t>(k, n);
  auto pack = [&](int64_t qi) {
    return pack_query(queries + query_offsets[qi] * docs.dim,
                      query_offsets[qi + 1] - query_offsets[qi], docs.dim);
  };
  const MaxSimKernels& kernels = gingham::kernels().maxsim;
  bool flagged = false;
  if (n_queries == 1 || n == 0) {
    std::vector<float> scores;
    for (int64_t qi = 0; qi < n_queries; ++qi) {
      flagged |= topk_of_query(pack(qi), docs, nonempty, k, true, &scores,
                               out_scores + qi * k_out, out_ids + qi * k_out);
    }
    return flagged;
  }
  // Several queries: score them chunk by chunk of documents, so each chunk's tokens are read
  // from memory once and reused from L2 by every query of a group (one query at a time would
  // stream the whole corpus per query). Groups bound the score buffer to kMaxGroupScores floats.
  const std::vector<int64_t> chunks = document_chunks(docs, nonempty);
  const int64_t n_chunks = static_cast<int64_t>(chunks.size()) - 1;
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(n_queries, kMaxGroupScores / n));
  std::vector<float> scores(static_cast<size_t>(group * n));
  const int n_threads = get_num_threads();
  for (int64_t first = 0; first < n_queries; first += group) {
    const int64_t n_group = std::min(group, n_queries - first);
    std::vector<PackedQuery> packed(static_cast<size_t>(n_group));
    int64_t widest = 0;
    for (int64_t g = 0; g < n_group; ++g) {
      packed[g] = pack(first + g);
      if (packed[g].n_blocks > packed[widest].n_blocks) widest = g;
    }
    ParallelErrors errors;
#pragma omp parallel num_threads(n_threads) if (n_chunks > 1) reduction(|| : flagged)
    {
      KernelScratch scratch;
      // big enough for every query of the group
      errors.run([&] { prepare_scratch(packed[widest], &scratch); });
#pragma omp for schedule(dynamic, 1)
      for (int64_t c = 0; c < n_chunks; ++c) {
        errors.run([&] {
          for (int64_t g = 0; g < n_group; ++g) {
            for (int64_t j = chunks[c]; j < chunks[c + 1]; ++j) {
              scores[g * n + j] = score_document(kernels, packed[g], docs, nonempty[j],
                                                 &scratch);
            }
          }
        });
      }
      flagged = flagged || scratch.saw_nonfinite;
#pragma omp for schedule(dynamic, 1)
      for (int64_t g = 0; g < n_group; ++g) {
        errors.run([&] {
          select_topk(scores.data() + g * n, nonempty.data(), n, k,
                      out_scores + (first + g) * k_out, out_ids + (first + g) * k_out);
        });
      }
    }
    errors.rethrow();
  }
  return saw_nonfinite(kernels, flagged);
}

}  // namespace

bool exact_search(const float* queries, const int64_t* query_offsets, int64_t n_queries,
                  const DocTokens& docs, int64_t k, float* out_scores, int64_t* out_ids) {
  std::vector<int64_t> nonempty;
  nonempty.reserve(static_cast<size_t>(docs.n_docs));
  for (int64_t i = 0; i < docs.n_docs; ++i) {
    if (docs.doc_offsets[i + 1] > docs.doc_offsets[i]) nonempty.push_back(i);
  }
  return exact_search_docs(queries, query_offsets, n_queries, docs, nonempty, k, out_scores,
                           out_ids);
}

// ---- masked exact search (durable index: liveness and filters) ----
int64_t count_nonempty_listed(const int64_t* doc_offsets, const int64_t* doc_ids, int64_t n_ids) {
  int64_t count = 0;
  for (int64_t i = 0; i < n_ids; ++i) count += doc_offsets[doc_ids[i] + 1] > doc_offsets[doc_ids[i]];
  return count;
}

bool exact_search_subset(const float* queries, const int64_t* query_offsets, int64_t n_queries,
                         const DocTokens& docs, const int64_t* doc_ids, int64_t n_ids, int64_t k,
                         float* out_scores, int64_t* out_ids) {
  std::vector<int64_t> nonempty;
  nonempty.reserve(static_cast<size_t>(n_ids));
  for (int64_t i = 0; i < n_ids; ++i) {
    const int64_t d = doc_ids[i];
    if (docs.doc_offsets[d + 1] > docs.doc_offsets[d]) nonempty.push_back(d);
  }
  return exact_search_docs(queries, query_offsets, n_queries, docs, nonempty, k, out_scores,
                           out_ids);
}
// ---- end masked exact search ----

}  // namespace gingham
