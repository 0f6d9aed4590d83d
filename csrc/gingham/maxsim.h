// Exact MaxSim over documents in CSR layout.
//
//   tokens:      T x dim, row-major, float32, fp16 (IEEE binary16 bit patterns) or int8 with
//                token_scales (T float32): token j = token_scales[j] * tokens[j] (quantize.h)
//   doc_offsets: n_docs + 1 non-decreasing int64, doc_offsets[0] = 0, doc_offsets[n_docs] = T;
//                document i owns tokens[doc_offsets[i] : doc_offsets[i+1]]
//
//   score(q, i) = sum over query rows r of max over tokens j of i of <q_r, token_j>
//
// A document with no tokens scores -inf and never enters a top-k. Every function here expects
// validated input (the bindings check it) and runs on gingham::get_num_threads() threads; each
// score is computed by one thread in a fixed order, so results do not depend on threading.
//
// Each scoring function returns true when some similarity it computed was NaN or inf (or the
// level's kernels do not probe; kernels/maxsim_kernels.h). A NaN / inf in a scored token always
// makes it true, so finiteness is validated by scanning the tokens only then; finite tokens make
// it true only when a similarity overflows. The scores are the same either way.
#pragma once

#include <cstdint>

namespace gingham {

enum class TokenDtype { F32, F16, I8 };

struct DocTokens {
  const void* tokens = nullptr;
  TokenDtype dtype = TokenDtype::F32;
  const float* token_scales = nullptr;  // T floats, int8 tokens only
  int64_t dim = 0;
  const int64_t* doc_offsets = nullptr;
  int64_t n_docs = 0;
};

// scores[i] for every document i (n_docs floats). Parallel over documents.
bool maxsim_scores(const float* query, int64_t n_query_tokens, const DocTokens& docs,
                   float* scores);

// scores[j] = score of document doc_ids[j] (j < n_ids). Parallel over the listed documents.
bool maxsim_scores_subset(const float* query, int64_t n_query_tokens, const DocTokens& docs,
                          const int64_t* doc_ids, int64_t n_ids, float* scores);

// Number of documents with at least one token: the most a search can return.
int64_t count_nonempty_docs(const int64_t* doc_offsets, int64_t n_docs);

// Top-k documents for each of n_queries queries stored back to back (rows
// query_offsets[q] : query_offsets[q+1] of `queries`, n_queries + 1 offsets). Writes
// k_out = min(k, count_nonempty_docs) results per query, best first (ties: lower document
// index), into out_scores / out_ids of shape n_queries x k_out. Parallel over documents: one
// query's documents, or, for several queries, chunks of documents (~192 KiB of tokens) that
// every query of a group scores while the chunk is in L2, so the corpus is read once per group
// rather than once per query; top-k selection is then parallel over queries.
bool exact_search(const float* queries, const int64_t* query_offsets, int64_t n_queries,
                  const DocTokens& docs, int64_t k, float* out_scores, int64_t* out_ids);

// ---- masked exact search (durable index: liveness and filters) ----
// Number of non-empty documents among doc_ids (each in [0, n_docs)).
int64_t count_nonempty_listed(const int64_t* doc_offsets, const int64_t* doc_ids, int64_t n_ids);

// exact_search restricted to the documents doc_ids (n_ids values, strictly ascending, each in
// [0, n_docs)); empty ones are skipped. k_out = min(k, count_nonempty_listed); result ids are
// document indices of `docs` (not positions in doc_ids); ties: lower document index.
bool exact_search_subset(const float* queries, const int64_t* query_offsets, int64_t n_queries,
                         const DocTokens& docs, const int64_t* doc_ids, int64_t n_ids, int64_t k,
                         float* out_scores, int64_t* out_ids);
// ---- end masked exact search ----

}  // namespace gingham
