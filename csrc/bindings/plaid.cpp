// PLAID search and scoring over ResidualSegments; the per-query statistics record.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "checks.h"
#include "gingham/plaid.h"
#include "segments.h"

namespace gingham::bind {
namespace {

using SegmentList = std::vector<std::shared_ptr<ResidualSegment>>;

// The checked views of segments sharing one codec, with their masks (kept alive in keep_masks).
const Codec* checked_views(const SegmentList& segments, const py::list& masks,
                           std::vector<SegmentView>* views, std::vector<py::array>* keep_masks) {
  require(!segments.empty(), "segments must hold at least one ResidualSegment");
  require(static_cast<size_t>(masks.size()) == segments.size(),
          "masks must hold one entry (uint8 array or None) per segment; got " +
              std::to_string(masks.size()) + " for " + std::to_string(segments.size()));
  const Codec* codec = nullptr;
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
      keep_masks->push_back(mask);
    }
    views->push_back(v);
  }
  return codec;
}

std::pair<py::array_t<float>, py::array_t<int64_t>> checked_queries(const py::handle& queries,
                                                                    const py::handle& offsets,
                                                                    const Codec& codec) {
  auto batch = query_batch(queries, offsets);
  require(batch.first.shape(1) == codec.view.dim,
          "queries must have " + std::to_string(codec.view.dim) +
              " columns (the codec dim); got shape " + shape_of(batch.first));
  return batch;
}

// PlaidParams from the search keywords, each checked (names the keyword).
PlaidParams checked_params(int64_t k, int64_t ncells, float centroid_score_threshold,
                           int64_t ndocs, bool exact) {
  require(k > 0, "k must be a positive integer; got " + std::to_string(k));
  require(ncells > 0, "ncells must be a positive integer; got " + std::to_string(ncells));
  require(ndocs > 0, "ndocs must be a positive integer; got " + std::to_string(ndocs));
  require(!std::isnan(centroid_score_threshold), "centroid_score_threshold must not be NaN");
  PlaidParams params;
  params.k = k;
  params.ncells = ncells;
  params.centroid_score_threshold = centroid_score_threshold;
  params.ndocs = ndocs;
  params.exact = exact;
  return params;
}

// The listed documents of every query (plaid.h ListedDocs), each checked against the views;
// scores: a new float32 array of one entry per listed document. `what` prefixes the names.
struct CheckedListed {
  py::array_t<int64_t> offsets, segments, rows;
  py::array_t<float> scores;
  ListedDocs view() {
    return {offsets.data(), segments.data(), rows.data(), scores.mutable_data()};
  }
};

CheckedListed checked_listed(const std::string& what, const py::handle& offsets,
                             const py::handle& segments, const py::handle& rows,
                             int64_t n_queries, const std::vector<SegmentView>& views) {
  CheckedListed c{typed_array<int64_t>(offsets, what + "_offsets", 1, "int64"),
                  typed_array<int64_t>(segments, what + "_segments", 1, "int64"),
                  typed_array<int64_t>(rows, what + "_rows", 1, "int64"), {}};
  require(c.offsets.shape(0) == n_queries + 1,
          what + "_offsets must hold n_queries + 1 = " + std::to_string(n_queries + 1) +
              " values; got " + shape_of(c.offsets));
  const int64_t n = c.segments.shape(0);
  require(c.rows.shape(0) == n, what + "_rows must hold as many values as " + what +
                                    "_segments (" + std::to_string(n) + "); got " +
                                    shape_of(c.rows));
  const int64_t* o = c.offsets.data();
  require(o[0] == 0 && o[n_queries] == n,
          what + "_offsets must run from 0 to len(" + what + "_rows)");
  for (int64_t i = 0; i < n_queries; ++i) {
    require(o[i] <= o[i + 1], what + "_offsets must be non-decreasing");
  }
  for (int64_t j = 0; j < n; ++j) {
    const int64_t s = c.segments.data()[j], r = c.rows.data()[j];
    require(s >= 0 && s < static_cast<int64_t>(views.size()),
            what + "_segments values must be segment positions < " +
                std::to_string(views.size()) + "; got " + std::to_string(s));
    require(r >= 0 && r < views[static_cast<size_t>(s)].n_docs,
            what + "_rows values must be rows of their segment; got " + std::to_string(r));
  }
  c.scores = py::array_t<float>(n);
  return c;
}

py::tuple py_plaid_search(const py::handle& queries, const py::handle& query_offsets,
                          const SegmentList& segments, const py::list& masks, int64_t k,
                          int64_t ncells, float centroid_score_threshold, int64_t ndocs,
                          bool exact, const py::object& also) {
  std::vector<SegmentView> views;
  std::vector<py::array> keep_masks;
  const Codec* codec = checked_views(segments, masks, &views, &keep_masks);
  auto [q, q_offsets] = checked_queries(queries, query_offsets, *codec);
  const PlaidParams params = checked_params(k, ncells, centroid_score_threshold, ndocs, exact);
  const int64_t n_queries = q_offsets.shape(0) - 1;
  const int64_t n_segments = static_cast<int64_t>(views.size());
  std::optional<CheckedListed> listed;
  if (!also.is_none()) {
    const auto parts = also.cast<py::tuple>();
    require(parts.size() == 3, "also must be (offsets, segments, rows); got " +
                                   std::to_string(parts.size()) + " items");
    listed = checked_listed("also", parts[0], parts[1], parts[2], n_queries, views);
  }
  ListedDocs also_docs;
  if (listed) also_docs = listed->view();
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
                 out_rows.mutable_data(), stats.mutable_data(), listed ? &also_docs : nullptr);
  }
  if (listed) return py::make_tuple(out_scores, out_segments, out_rows, stats, listed->scores);
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

py::tuple py_plaid_candidates(const py::handle& queries, const py::handle& query_offsets,
                              const SegmentList& segments, const py::list& masks, int64_t k,
                              int64_t ncells, float centroid_score_threshold, int64_t ndocs) {
  std::vector<SegmentView> views;
  std::vector<py::array> keep_masks;
  const Codec* codec = checked_views(segments, masks, &views, &keep_masks);
  auto [q, q_offsets] = checked_queries(queries, query_offsets, *codec);
  const PlaidParams params = checked_params(k, ncells, centroid_score_threshold, ndocs, false);
  const int64_t n_queries = q_offsets.shape(0) - 1, keep = std::max(ndocs, k);
  py::array_t<int64_t> n_candidates(n_queries), n_kept(n_queries);
  py::array_t<float> approx({n_queries, keep}), rescored({n_queries, keep});
  py::array_t<int64_t> out_segments({n_queries, keep}), out_rows({n_queries, keep});
  {
    py::gil_scoped_release release;
    plaid_candidates(codec->view, views.data(), static_cast<int64_t>(views.size()), q.data(),
                     q_offsets.data(), n_queries, params, keep, n_candidates.mutable_data(),
                     n_kept.mutable_data(), approx.mutable_data(), rescored.mutable_data(),
                     out_segments.mutable_data(), out_rows.mutable_data());
  }
  return py::make_tuple(n_candidates, n_kept, approx, rescored, out_segments, out_rows);
}

py::array_t<float> py_plaid_score_candidates(const py::handle& queries,
                                             const py::handle& query_offsets,
                                             const SegmentList& segments,
                                             const py::handle& cand_offsets,
                                             const py::handle& cand_segments,
                                             const py::handle& cand_rows) {
  std::vector<SegmentView> views;
  std::vector<py::array> unused;
  py::list no_masks;
  for (size_t s = 0; s < segments.size(); ++s) no_masks.append(py::none());
  const Codec* codec = checked_views(segments, no_masks, &views, &unused);
  auto [q, q_offsets] = checked_queries(queries, query_offsets, *codec);
  const int64_t n_queries = q_offsets.shape(0) - 1;
  CheckedListed cand =
      checked_listed("cand", cand_offsets, cand_segments, cand_rows, n_queries, views);
  const ListedDocs docs = cand.view();
  {
    py::gil_scoped_release release;
    plaid_score_candidates(codec->view, views.data(), static_cast<int64_t>(views.size()),
                           q.data(), q_offsets.data(), n_queries, docs);
  }
  return cand.scores;
}

}  // namespace

void register_plaid(py::module_& m) {
  // The statistics layout: field names and order come from struct PlaidStats only.
  PYBIND11_NUMPY_DTYPE(PlaidStats, centroid_ms, candidate_ms, approx_ms, full_ms, topk_ms,
                       n_cells, n_candidates, n_after_pruning, n_full);
  m.def("plaid_search", &py_plaid_search, py::arg("queries"), py::arg("query_offsets"),
        py::arg("segments"), py::arg("masks"), py::arg("k"), py::arg("ncells"),
        py::arg("centroid_score_threshold"), py::arg("ndocs"), py::arg("exact") = false, py::arg("also") = py::none(),
        "Staged PLAID search (csrc/gingham/plaid.h) over ResidualSegments sharing one Codec; "
        "masks: one uint8 (n_docs,) array (1 = searchable) or None per segment. -> (scores "
        "float32, segment position int64, row int64, each (n_queries, min(k, searchable "
        "docs)); stats (n_queries,) of plaid_stats_dtype()). also = (offsets (n_queries + 1,), "
        "segment positions (m,), rows (m,)) int64: documents of each query also scored exactly "
        "(searchable or not) with the search's query tables; then a fifth item, their float32 "
        "(m,) scores (empty document: -inf).");
  m.def("plaid_score_docs", &py_plaid_score_docs, py::arg("query"), py::arg("segment"),
        py::arg("doc_ids"),
        "MaxSim of query (Lq, d) against the decoded tokens of the segment's documents "
        "doc_ids (m,) int64 -> float32 (m,), computed from the codes; empty document: -inf.");
  m.def("plaid_candidates", &py_plaid_candidates, py::arg("queries"), py::arg("query_offsets"),
        py::arg("segments"), py::arg("masks"), py::arg("k"), py::arg("ncells"),
        py::arg("centroid_score_threshold"), py::arg("ndocs"),
        "PLAID stages 1-3a at exactly ncells cells (csrc/gingham/plaid.h plaid_candidates) -> "
        "(n_candidates int64 (n_queries,), n_kept int64 (n_queries,), approx float32, "
        "rescored float32, segment position int64, row int64, each (n_queries, max(ndocs, k)), "
        "row q valid up to n_kept[q], best approx first).");
  m.def("plaid_score_candidates", &py_plaid_score_candidates, py::arg("queries"),
        py::arg("query_offsets"), py::arg("segments"), py::arg("cand_offsets"),
        py::arg("cand_segments"), py::arg("cand_rows"),
        "Exact MaxSim from the codes of query q against the documents (cand_segments[j], "
        "cand_rows[j]), j in [cand_offsets[q], cand_offsets[q + 1]) -> float32 (len(cand_rows),)"
        "; empty document: -inf.");
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
