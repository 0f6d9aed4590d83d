// Sparse scoring over term postings: the column-compressed matrix of a BM25 index, where term t
// occurs in documents doc_ids[p] with weight weights[p] for p in [term_offsets[t],
// term_offsets[t + 1]).
#pragma once

#include <cstdint>

namespace gingham {

// scores[d] (n_docs values, zeroed here) = the sum over the query's terms (a repeated term adds
// again) of its weight in document d, added term by term in posting order, in float32. Returns
// -1, or the first posting whose document id is outside [0, n_docs) (scores are then partial).
// The caller guarantees every term's posting range lies within the arrays.
int64_t posting_scores(const float* weights, const int32_t* doc_ids, const int64_t* term_offsets,
                       const int64_t* terms, int64_t n_query_terms, int64_t n_docs,
                       float* scores);

// The min(k, number of positive scores) rows with the highest positive scores, best first, ties
// by the lower row, written to out_scores / out_rows; returns how many.
int64_t top_positive(const float* scores, int64_t n, int64_t k, float* out_scores,
                     int64_t* out_rows);

}  // namespace gingham
