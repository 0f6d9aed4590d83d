// MaxSim and exact search over float32 / float16 / int8 token buffers and FlatSegments, int8
// quantization, and the finiteness probe the Python validation uses. maxsim_scores and
// exact_search validate finiteness themselves (check_finite); the _subset calls do not (they
// score only some documents, so the kernels' probe cannot vouch for the other tokens).
#include <algorithm>
#include <string>

#include "checks.h"
#include "gingham/finite.h"
#include "gingham/maxsim.h"
#include "gingham/quantize.h"
#include "segments.h"

namespace gingham::bind {
namespace {

// check_finite (maxsim_scores / exact_search): the query and int8 token_scales are scanned
// before scoring (small); float tokens only when a kernel met a non-finite similarity, which a
// NaN / inf token always causes (maxsim.h), so a finite corpus is never scanned twice.
// bad: flat index; row_len: columns of a matrix, 0 for a vector.
void raise_nonfinite(const std::string& name, int64_t bad, int64_t row_len) {
  const std::string at = row_len > 0 ? std::to_string(bad / row_len) + ", " +
                                           std::to_string(bad % row_len)
                                     : std::to_string(bad);
  throw py::value_error(name + " holds a non-finite value (NaN or inf) at [" + at + "]");
}

void check_inputs_finite(const float* query, int64_t n_query_values, const DocTokens& docs,
                         const char* query_name) {
  int64_t bad_query, bad_scale = -1;
  const int64_t n_rows = docs.doc_offsets[docs.n_docs];
  {
    py::gil_scoped_release release;
    bad_query = first_nonfinite_f32(query, n_query_values);
    if (bad_query < 0 && docs.dtype == TokenDtype::I8) {
      bad_scale = first_nonfinite_f32(docs.token_scales, n_rows);
    }
  }
  if (bad_query >= 0) raise_nonfinite(query_name, bad_query, docs.dim);
  if (bad_scale >= 0) raise_nonfinite("token_scales", bad_scale, 0);
}

// After a scoring pass that flagged a non-finite similarity: raises if a float token is NaN /
// inf; returns when the tokens are finite (the similarities overflowed; the scores stand).
void check_tokens_finite(const DocTokens& docs) {
  if (docs.dtype == TokenDtype::I8) return;  // int8 values are finite, scales checked before
  const int64_t n_values = docs.doc_offsets[docs.n_docs] * docs.dim;
  int64_t bad;
  {
    py::gil_scoped_release release;
    bad = docs.dtype == TokenDtype::F16
              ? first_nonfinite_f16(static_cast<const uint16_t*>(docs.tokens), n_values)
              : first_nonfinite_f32(static_cast<const float*>(docs.tokens), n_values);
  }
  if (bad >= 0) raise_nonfinite("tokens", bad, docs.dim);
}

py::array_t<float> query_matrix(const py::handle& query, int64_t dim) {
  auto q = float32_matrix(query, "query", dim);
  require(q.shape(0) > 0 && q.shape(1) > 0, "query must not be empty; got shape " + shape_of(q));
  return q;
}

py::array_t<float> scores_subset(const py::array_t<float>& q, const DocTokens& docs,
                                 const py::handle& doc_ids) {
  auto ids = doc_id_vector(doc_ids, docs.n_docs, "doc_ids");
  py::array_t<float> scores(ids.shape(0));
  {
    py::gil_scoped_release release;
    maxsim_scores_subset(q.data(), q.shape(0), docs, ids.data(), ids.shape(0),
                         scores.mutable_data());
  }
  return scores;
}

py::tuple search_all(const py::handle& queries, const py::handle& query_offsets,
                     const DocTokens& docs, int64_t k, bool check_finite) {
  auto [q, q_offsets] = query_batch(queries, query_offsets);
  require(q.shape(1) == docs.dim, "queries must have " + std::to_string(docs.dim) +
                                      " columns (the tokens' dim); got shape " + shape_of(q));
  require(k > 0, "k must be a positive integer; got " + std::to_string(k));
  if (check_finite) check_inputs_finite(q.data(), q.size(), docs, "queries");
  const int64_t n_queries = q_offsets.shape(0) - 1;
  const int64_t k_out = std::min<int64_t>(k, count_nonempty_docs(docs.doc_offsets, docs.n_docs));
  py::array_t<float> out_scores({n_queries, k_out});
  py::array_t<int64_t> out_ids({n_queries, k_out});
  bool flagged;
  {
    py::gil_scoped_release release;
    flagged = exact_search(q.data(), q_offsets.data(), n_queries, docs, k,
                           out_scores.mutable_data(), out_ids.mutable_data());
  }
  if (check_finite && flagged) check_tokens_finite(docs);
  return py::make_tuple(out_scores, out_ids);
}

py::tuple search_subset(const py::handle& queries, const py::handle& query_offsets,
                        const DocTokens& docs, const py::handle& doc_ids, int64_t k) {
  auto [q, q_offsets] = query_batch(queries, query_offsets);
  require(q.shape(1) == docs.dim, "queries must have " + std::to_string(docs.dim) +
                                      " columns (the tokens' dim); got shape " + shape_of(q));
  require(k > 0, "k must be a positive integer; got " + std::to_string(k));
  const int64_t n_queries = q_offsets.shape(0) - 1;
  auto ids = int64_vector(doc_ids, "doc_ids");
  const int64_t n_ids = ids.shape(0);
  for (int64_t i = 0; i < n_ids; ++i) {
    const int64_t d = ids.data()[i];
    require(d >= 0 && d < docs.n_docs && (i == 0 || d > ids.data()[i - 1]),
            "doc_ids must be strictly ascending in [0, " + std::to_string(docs.n_docs) +
                "); doc_ids[" + std::to_string(i) + "] = " + std::to_string(d));
  }
  const int64_t k_out =
      std::min<int64_t>(k, count_nonempty_listed(docs.doc_offsets, ids.data(), n_ids));
  py::array_t<float> out_scores({n_queries, k_out});
  py::array_t<int64_t> out_ids({n_queries, k_out});
  {
    py::gil_scoped_release release;
    exact_search_subset(q.data(), q_offsets.data(), n_queries, docs, ids.data(), n_ids, k,
                        out_scores.mutable_data(), out_ids.mutable_data());
  }
  return py::make_tuple(out_scores, out_ids);
}

DocTokens array_docs(const py::handle& queries_or_query, const py::handle& tokens,
                     const py::handle& doc_offsets, const py::object& token_scales,
                     const char* query_name) {
  auto q = float32_matrix(queries_or_query, query_name, -1);
  if (!py::isinstance<py::array>(tokens)) throw py::type_error("tokens must be a numpy array");
  auto offsets = int64_vector(doc_offsets, "doc_offsets");
  return doc_tokens(py::reinterpret_borrow<py::array>(tokens), offsets, q.shape(1), token_scales);
}

int64_t py_first_nonfinite(const py::array& values) {
  require(values.flags() & py::array::c_style, "values must be C-contiguous");
  if (is_float16(values)) {
    const auto* data = static_cast<const uint16_t*>(values.data());
    py::gil_scoped_release release;
    return first_nonfinite_f16(data, values.size());
  }
  if (!py::isinstance<py::array_t<float>>(values)) {
    throw py::type_error("values must be float32 or float16; got " + dtype_of(values));
  }
  const auto* data = static_cast<const float*>(values.data());
  py::gil_scoped_release release;
  return first_nonfinite_f32(data, values.size());
}

py::tuple py_quantize_int8(const py::handle& tokens) {
  auto t = float32_matrix(tokens, "tokens", -1);
  const int64_t n = t.shape(0), dim = t.shape(1);
  py::array_t<int8_t> values({n, dim});
  py::array_t<float> scales(n);
  {
    py::gil_scoped_release release;
    quantize_int8(t.data(), n, dim, values.mutable_data(), scales.mutable_data());
  }
  return py::make_tuple(values, scales);
}

}  // namespace

void register_maxsim(py::module_& m) {
  m.def("maxsim_scores",
        [](const py::handle& query, const py::handle& tokens, const py::handle& doc_offsets,
           const py::object& token_scales, bool check_finite) {
          auto q = query_matrix(query, -1);
          const DocTokens docs = array_docs(query, tokens, doc_offsets, token_scales, "query");
          if (check_finite) check_inputs_finite(q.data(), q.size(), docs, "query");
          py::array_t<float> scores(docs.n_docs);
          bool flagged;
          {
            py::gil_scoped_release release;
            flagged = maxsim_scores(q.data(), q.shape(0), docs, scores.mutable_data());
          }
          if (check_finite && flagged) check_tokens_finite(docs);
          return scores;
        },
        py::arg("query"), py::arg("tokens"), py::arg("doc_offsets"),
        py::arg("token_scales") = py::none(), py::arg("check_finite") = true,
        "MaxSim score of one float32 query (Lq, d) against every document of tokens (T, d) "
        "float32/float16 (or int8 with token_scales (T,) float32) with doc_offsets (n+1,) int64 "
        "-> float32 (n,). Empty documents: -inf. check_finite: ValueError on a NaN/inf in query, "
        "tokens or token_scales (tokens are scanned only when a score pass met a non-finite "
        "similarity).");
  m.def("maxsim_scores_subset",
        [](const py::handle& query, const py::handle& tokens, const py::handle& doc_offsets,
           const py::handle& doc_ids, const py::object& token_scales) {
          auto q = query_matrix(query, -1);
          return scores_subset(q, array_docs(query, tokens, doc_offsets, token_scales, "query"),
                               doc_ids);
        },
        py::arg("query"), py::arg("tokens"), py::arg("doc_offsets"), py::arg("doc_ids"),
        py::arg("token_scales") = py::none(),
        "MaxSim scores of one query against the documents doc_ids (m,) int64 -> float32 (m,).");
  m.def("exact_search",
        [](const py::handle& queries, const py::handle& query_offsets, const py::handle& tokens,
           const py::handle& doc_offsets, int64_t k, const py::object& token_scales,
           bool check_finite) {
          return search_all(queries, query_offsets,
                            array_docs(queries, tokens, doc_offsets, token_scales, "queries"), k,
                            check_finite);
        },
        py::arg("queries"), py::arg("query_offsets"), py::arg("tokens"), py::arg("doc_offsets"),
        py::arg("k"), py::arg("token_scales") = py::none(), py::arg("check_finite") = true,
        "Top-k documents per query. queries (Lq_total, d) float32 with query_offsets "
        "(n_queries+1,) int64 -> (scores float32, doc ids int64), each (n_queries, k_out), "
        "k_out = min(k, non-empty documents); best first, ties by lower id. check_finite as in "
        "maxsim_scores.");
  m.def("exact_search_subset",
        [](const py::handle& queries, const py::handle& query_offsets, const py::handle& tokens,
           const py::handle& doc_offsets, const py::handle& doc_ids, int64_t k,
           const py::object& token_scales) {
          return search_subset(queries, query_offsets,
                               array_docs(queries, tokens, doc_offsets, token_scales, "queries"),
                               doc_ids, k);
        },
        py::arg("queries"), py::arg("query_offsets"), py::arg("tokens"), py::arg("doc_offsets"),
        py::arg("doc_ids"), py::arg("k"), py::arg("token_scales") = py::none(),
        "exact_search restricted to doc_ids (m,) int64, strictly ascending -> (scores float32, "
        "document indices int64), each (n_queries, min(k, non-empty listed documents)); best "
        "first, ties by lower index.");
  m.def("flat_search",
        [](const FlatSegment& segment, const py::handle& queries, const py::handle& query_offsets,
           int64_t k, const py::object& doc_ids) {
          // a FlatSegment's arrays were checked finite when it was built
          return doc_ids.is_none()
                     ? search_all(queries, query_offsets, segment.docs, k, false)
                     : search_subset(queries, query_offsets, segment.docs, doc_ids, k);
        },
        py::arg("segment"), py::arg("queries"), py::arg("query_offsets"), py::arg("k"),
        py::arg("doc_ids") = py::none(),
        "exact_search (doc_ids None) or exact_search_subset over a FlatSegment.");
  m.def("flat_score_docs",
        [](const FlatSegment& segment, const py::handle& query, const py::handle& doc_ids) {
          return scores_subset(query_matrix(query, segment.docs.dim), segment.docs, doc_ids);
        },
        py::arg("segment"), py::arg("query"), py::arg("doc_ids"),
        "maxsim_scores_subset over a FlatSegment: query (Lq, d) float32, doc_ids (m,) int64 -> "
        "float32 (m,).");
  m.def("first_nonfinite", &py_first_nonfinite, py::arg("values"),
        "Flat index of the first NaN/inf in a float32/float16 array, or -1.");
  m.def("quantize_int8", &py_quantize_int8, py::arg("tokens"),
        "Symmetric per-token int8 quantization of finite float32 tokens (T, d) -> (values int8 "
        "(T, d), scales float32 (T,)) with token ~= scale * values, values in [-127, 127].");
}

}  // namespace gingham::bind
