// PLAID search and scoring over ResidualSegments; the per-query statistics record.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "checks.h"
#include "gingham/plaid.h"
#include "segments.h"

namespace gingham::bind {
namespace {

using SegmentList = std::vector<std::shared_ptr<ResidualSegment>>;

py::tuple py_plaid_search(const py::handle& queries, const py::handle& query_offsets,
                          const SegmentList& segments, const py::list& masks, int64_t k,
                          int64_t ncells, float centroid_score_threshold, int64_t ndocs,
                          bool exact) {
  require(!segments.empty(), "segments must hold at least one ResidualSegment");
  require(static_cast<size_t>(masks.size()) == segments.size(),
          "masks must hold one entry (uint8 array or None) per segment; got " +
              std::to_string(masks.size()) + " for " + std::to_string(segments.size()));
  const Codec* codec = nullptr;
  std::vector<SegmentView> views;
  std::vector<py::array> keep_masks;
  for (size_t s = 0; s < segments.size(); ++s) {
    const std::string name = "segments[" + std::to_string(s) + "]";
    require(segments[s] != nullptr, name + " must be a ResidualSegment, not None");
    if (codec == nullptr) codec = segments[s]->codec.get();
    require(segments[s]->codec.get() == codec, name + " has another codec than segments[0]");
    SegmentView v = segments[s]->view;
    if (!masks[s].is_none()) {
      const std::string mask_name = "masks[" + std::to_string(s) + "]";
      auto mask = typed_array<uint8_t>(masks[s], mask_name, 1, "uint8");
      require(mask.shape(0) == v.n_docs, mask_name + " must hold n_docs = " +
                                             std::to_string(v.n_docs) + " values; got " +
                                             shape_of(mask));
      v.mask = mask.data();
      keep_masks.push_back(mask);
    }
    views.push_back(v);
  }
  auto [q, q_offsets] = query_batch(queries, query_offsets);
  require(q.shape(1) == codec->view.dim, "queries must have " + std::to_string(codec->view.dim) +
                                             " columns (the codec dim); got shape " +
                                             shape_of(q));
  require(k > 0, "k must be a positive integer; got " + std::to_string(k));
  require(ncells > 0, "ncells must be a positive integer; got " + std::to_string(ncells));
  require(ndocs > 0, "ndocs must be a positive integer; got " + std::to_string(ndocs));
  require(!std::isnan(centroid_score_threshold), "centroid_score_threshold must not be NaN");
  const int64_t n_queries = q_offsets.shape(0) - 1;
  const int64_t n_segments = static_cast<int64_t>(views.size());
  PlaidParams params;
  params.k = k;
  params.ncells = ncells;
  params.centroid_score_threshold = centroid_score_threshold;
  params.ndocs = ndocs;
  params.exact = exact;
  int64_t searchable;
  {
    py::gil_scoped_release release;
    searchable = count_searchable_docs(views.data(), n_segments);
  }
  const int64_t k_out = std::min(k, searchable);
  py::array_t<float> out_scores({n_queries, k_out});
  py::array_t<int64_t> out_segments({n_queries, k_out});
  py::array_t<int64_t> out_rows({n_queries, k_out});
  py::array_t<PlaidStats> stats(n_queries);
  {
    py::gil_scoped_release release;
    plaid_search(codec->view, views.data(), n_segments, q.data(), q_offsets.data(), n_queries,
                 params, k_out, out_scores.mutable_data(), out_segments.mutable_data(),
                 out_rows.mutable_data(), stats.mutable_data());
  }
  return py::make_tuple(out_scores, out_segments, out_rows, stats);
}

py::array_t<float> py_plaid_score_docs(const py::handle& query, const ResidualSegment& segment,
                                       const py::handle& doc_ids) {
  const CodecView& codec = segment.codec->view;
  auto q = float32_matrix(query, "query", codec.dim);
  require(q.shape(0) > 0, "query must hold at least one token");
  auto ids = doc_id_vector(doc_ids, segment.view.n_docs, "doc_ids");
  py::array_t<float> scores(ids.shape(0));
  {
    py::gil_scoped_release release;
    score_docs_from_codes(codec, segment.view, q.data(), q.shape(0), ids.data(), ids.shape(0),
                          scores.mutable_data());
  }
  return scores;
}

}  // namespace

void register_plaid(py::module_& m) {
  // The statistics layout: field names and order come from struct PlaidStats only.
  PYBIND11_NUMPY_DTYPE(PlaidStats, centroid_ms, candidate_ms, approx_ms, full_ms, topk_ms,
                       n_cells, n_candidates, n_after_pruning, n_full);
  m.def("plaid_search", &py_plaid_search, py::arg("queries"), py::arg("query_offsets"),
        py::arg("segments"), py::arg("masks"), py::arg("k"), py::arg("ncells"),
        py::arg("centroid_score_threshold"), py::arg("ndocs"), py::arg("exact") = false,
        "Staged PLAID search (csrc/gingham/plaid.h) over ResidualSegments sharing one Codec; "
        "masks: one uint8 (n_docs,) array (1 = searchable) or None per segment. -> (scores "
        "float32, segment position int64, row int64, each (n_queries, min(k, searchable "
        "docs)); stats (n_queries,) of plaid_stats_dtype()).");
  m.def("plaid_score_docs", &py_plaid_score_docs, py::arg("query"), py::arg("segment"),
        py::arg("doc_ids"),
        "MaxSim of query (Lq, d) against the decoded tokens of the segment's documents "
        "doc_ids (m,) int64 -> float32 (m,), computed from the codes; empty document: -inf.");
  m.def("plaid_default_params", [](int64_t k) {
    require(k > 0, "k must be a positive integer; got " + std::to_string(k));
    const PlaidParams p = default_plaid_params(k);
    return py::make_tuple(p.ncells, p.centroid_score_threshold, p.ndocs);
  }, py::arg("k"), "PLAID defaults for k -> (ncells, centroid_score_threshold, ndocs).");
  m.def("plaid_stats_dtype", []() { return py::dtype::of<PlaidStats>(); },
        "numpy record dtype of the per-query search statistics: *_ms float64 stage times, n_* "
        "int64 counts (struct PlaidStats, csrc/gingham/plaid.h).");
}

}  // namespace gingham::bind
