// PLAID staged search over residual-compressed tokens (ColBERTv2 / PLAID, with WARP-style
// scoring straight from the codes). One index = a codec shared by one or more immutable
// segments; a segment is flat arrays:
//
//   codes        T uint16/uint32         residuals    T x (dim * nbits / 8) uint8   (codec.h)
//   scales       T float16 bits (uint16)
//   doc_offsets  n_docs + 1 int64        ivf_offsets  n_centroids + 1 int64          (ivf.h)
//   ivf_doc_ids  int32 (segment-local)   mask         n_docs uint8, 1 = searchable (optional)
//
// Results name a document by (segment position, row in the segment); ties in score go to the
// earlier segment, then the lower row.
//
// Stages for one query q (Lq x dim):
//   1. cs = q x centroids^T (dense kernels), and the residual look-up tables (plaid_lut_kernels.h);
//      centroid scores cos[c][i] = cs[c][i] / |centroid c|, the cosines colbert-ai's unit
//      centroids give. Tokens are coded to their nearest centroid (L2), which for a unit token is
//      the one of highest cosine, not of highest raw dot product: k-means centroids have norms
//      well below 1 (the broad clusters of popular tokens the most), and ranking by cs would
//      send a query row to a tight cluster instead of the one its matching tokens were coded to.
//   2. cells = union over query rows of the `ncells` centroids of highest cos; candidates = the
//      searchable documents of those cells' inverted lists
//   3. approximate score = sum_i max over the document's tokens of cos[code][i], where tokens
//      whose centroid scores below `centroid_score_threshold` for every query row are skipped
//      (pruned), and a row that none of the document's unpruned tokens reaches adds 0, nothing
//      (colbert-ai: -9999); keep the best max(ndocs, k); re-score those without pruning and keep
//      the best max(ndocs / 4, k)
//   4. exact MaxSim of the decoded tokens, computed from the look-up tables
//   5. top k (score descending, ties by lower global id)
// If fewer than k searchable documents are candidates, stage 2 doubles ncells until there are k
// or every cell is probed (then every searchable non-empty document is a candidate), so the
// result always holds min(k, searchable non-empty documents) documents.
// exact = true skips stages 2-3 and scores every searchable document. The staged search is
// exhaustive (equal to exact) with ncells >= n_centroids, threshold -inf and ndocs >= 4 n_docs.
//
// Threads: a batch with at least as many queries as threads runs one query per thread; otherwise
// each stage is parallel. Every document score is computed by one thread in a fixed order, so
// results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <limits>

#include "gingham/codec.h"

namespace gingham {

struct SegmentView {
  const void* codes = nullptr;
  int code_bytes = 2;
  const uint8_t* residuals = nullptr;
  const uint16_t* scales = nullptr;  // null: every scale is 1 (segments of format 1)
  const int64_t* doc_offsets = nullptr;
  int64_t n_docs = 0;
  const int64_t* ivf_offsets = nullptr;
  const int32_t* ivf_doc_ids = nullptr;
  const uint8_t* mask = nullptr;  // null: every document is searchable
  int64_t doc_base = 0;  // set by plaid_search: documents of earlier segments (callers leave 0)
};

// Mirrors the keywords of gingham.Index.search. A threshold of -inf disables pruning.
struct PlaidParams {
  int64_t k = 10;
  int64_t ncells = 1;
  float centroid_score_threshold = 0.5f;
  int64_t ndocs = 256;
  bool exact = false;
};

// PLAID's defaults: k <= 10: 1 / 0.5 / 256; k <= 100: 2 / 0.45 / 1024; else 4 / 0.4 / 4096.
PlaidParams default_plaid_params(int64_t k);

// Per-query profile (milliseconds and counts). The binding exports this struct as the numpy
// record dtype of every search's statistics (field names and order defined here only).
struct PlaidStats {
  double centroid_ms = 0, candidate_ms = 0, approx_ms = 0, full_ms = 0, topk_ms = 0;
  int64_t n_cells = 0;        // distinct centroids probed
  int64_t n_candidates = 0;   // searchable documents in those cells
  int64_t n_after_pruning = 0;  // kept by the pruned approximate stage
  int64_t n_full = 0;         // documents scored exactly from their codes
};

// Searchable documents with at least one token: results per query = min(k, this).
int64_t count_searchable_docs(const SegmentView* segments, int64_t n_segments);

// Documents listed per query: query q's are (segments[j], rows[j]) for j in
// [offsets[q], offsets[q + 1]); scores[j] receives the exact MaxSim of document j from its codes
// (-inf for an empty document). Every entry must have been checked against the segments.
struct ListedDocs {
  const int64_t* offsets = nullptr;
  const int64_t* segments = nullptr;
  const int64_t* rows = nullptr;
  float* scores = nullptr;
};

// Top-k per query for n_queries queries stored back to back (query_offsets: n_queries + 1).
// k_out = min(params.k, count_searchable_docs(segments)), computed once by the caller.
// out_scores / out_segments / out_rows: n_queries x k_out; stats: n_queries entries or null.
// also (nullable): documents scored exactly beside the search, searchable or not, with the query
// tables the search built (a hybrid search's lexical hits: no second table build per query).
// codec needs centroids and weights. Every array must have been checked (the binding's
// Codec / ResidualSegment objects): codes < n_centroids, offsets monotone, ivf ids < n_docs.
void plaid_search(const CodecView& codec, const SegmentView* segments, int64_t n_segments,
                  const float* queries, const int64_t* query_offsets, int64_t n_queries,
                  const PlaidParams& params, int64_t k_out, float* out_scores,
                  int64_t* out_segments, int64_t* out_rows, PlaidStats* stats,
                  const ListedDocs* also = nullptr);

// The phases of a search cut over several indexes at once (gingham.distributed: the cuts of
// stage 3 are then taken over every index together, so the result equals one index's).
// They run search_one's stages with the same functions and must stay in step with it.
//
// plaid_candidates: stages 1-3a for exactly params.ncells cells (no widening: the caller widens
// while every index together has fewer than k candidates). Per query q: n_candidates[q] =
// searchable documents in the probed cells; the best keep = max(ndocs, k) of them by the pruned
// approximate score (desc, ties by lower global id) go, best first, to row q of the
// n_queries x keep outputs (n_kept[q] of them): approx = that score, rescored = the score
// without pruning (stage 3b's; equal to approx when the threshold is -inf), and their
// (segment position, row).
void plaid_candidates(const CodecView& codec, const SegmentView* segments, int64_t n_segments,
                      const float* queries, const int64_t* query_offsets, int64_t n_queries,
                      const PlaidParams& params, int64_t keep, int64_t* n_candidates,
                      int64_t* n_kept, float* approx, float* rescored, int64_t* out_segments,
                      int64_t* out_rows);

// Stage 4 for chosen documents (ListedDocs), one table build per query.
void plaid_score_candidates(const CodecView& codec, const SegmentView* segments,
                            int64_t n_segments, const float* queries,
                            const int64_t* query_offsets, int64_t n_queries,
                            const ListedDocs& candidates);

// MaxSim of one query (n_rows x dim) against the decoded tokens of the listed documents of one
// segment (local ids), without decoding them; an empty document scores -inf. Parallel.
void score_docs_from_codes(const CodecView& codec, const SegmentView& segment, const float* query,
                           int64_t n_rows, const int64_t* doc_ids, int64_t n_ids, float* scores);

}  // namespace gingham
