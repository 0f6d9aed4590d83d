// posting_top: BM25-style scores of one query from a term-posting matrix and its top rows
// (csrc/gingham/sparse.h). Only the postings of the query's terms are checked: a call costs
// what the query touches, not the size of the vocabulary.
#include <algorithm>
#include <string>

#include "checks.h"
#include "gingham/sparse.h"

namespace gingham::bind {
namespace {

py::tuple posting_top(const py::handle& weights_in, const py::handle& doc_ids_in,
                      const py::handle& term_offsets_in, const py::handle& terms_in,
                      int64_t n_docs, int64_t k) {
  auto weights = typed_array<float>(weights_in, "weights", 1, "float32");
  auto doc_ids = typed_array<int32_t>(doc_ids_in, "doc_ids", 1, "int32");
  auto term_offsets = int64_vector(term_offsets_in, "term_offsets");
  auto terms = int64_vector(terms_in, "terms");
  require(n_docs >= 0, "n_docs must be >= 0; got " + std::to_string(n_docs));
  require(k > 0, "k must be positive; got " + std::to_string(k));
  const int64_t n_postings = weights.shape(0);
  require(doc_ids.shape(0) == n_postings, "doc_ids must hold one value per weight (" +
                                              std::to_string(n_postings) + "); got " +
                                              shape_of(doc_ids));
  const int64_t n_terms = term_offsets.shape(0) - 1;
  require(n_terms >= 0, "term_offsets must hold n_terms + 1 values; got none");
  const int64_t* offsets = term_offsets.data();
  const int64_t* query_terms = terms.data();
  for (int64_t i = 0; i < terms.shape(0); ++i) {
    const int64_t t = query_terms[i];
    require(t >= 0 && t < n_terms, "terms[" + std::to_string(i) + "] = " + std::to_string(t) +
                                       " is not a term in [0, " + std::to_string(n_terms) + ")");
    require(offsets[t] >= 0 && offsets[t] <= offsets[t + 1] && offsets[t + 1] <= n_postings,
            "term_offsets[" + std::to_string(t) + ":" + std::to_string(t + 2) +
                "] is not a range within the " + std::to_string(n_postings) + " postings");
  }
  py::array_t<float> scores(static_cast<py::ssize_t>(n_docs));
  int64_t bad;
  {
    py::gil_scoped_release release;
    bad = posting_scores(weights.data(), doc_ids.data(), offsets, query_terms, terms.shape(0),
                         n_docs, scores.mutable_data());
  }
  require(bad < 0, "doc_ids[" + std::to_string(bad) + "] is not a document in [0, " +
                       std::to_string(n_docs) + ")");
  const int64_t cap = std::min(k, n_docs);
  py::array_t<float> top_scores(static_cast<py::ssize_t>(cap));
  py::array_t<int64_t> top_rows(static_cast<py::ssize_t>(cap));
  int64_t n_top;
  {
    py::gil_scoped_release release;
    n_top = top_positive(scores.data(), n_docs, k, top_scores.mutable_data(),
                         top_rows.mutable_data());
  }
  top_scores.resize({static_cast<py::ssize_t>(n_top)});
  top_rows.resize({static_cast<py::ssize_t>(n_top)});
  return py::make_tuple(scores, top_rows, top_scores);
}

}  // namespace

void register_sparse(py::module_& m) {
  m.def("posting_top", &posting_top, py::arg("weights"), py::arg("doc_ids"),
        py::arg("term_offsets"), py::arg("terms"), py::arg("n_docs"), py::arg("k"),
        "Scores of one query over a term-posting matrix (term t occurs in doc_ids[p] with "
        "weights[p] for p in [term_offsets[t], term_offsets[t + 1])): weights float32 (P,), "
        "doc_ids int32 (P,), term_offsets int64 (n_terms + 1,), terms int64 (m,) (a repeated "
        "term adds again), n_docs, k -> (scores float32 (n_docs,), rows int64 (k',), their "
        "scores float32 (k',)): the min(k, positive scores) best rows, ties by lower row.");
}

}  // namespace gingham::bind
