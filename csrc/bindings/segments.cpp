#include "segments.h"

#include <string>
#include <utility>

#include "checks.h"
#include "gingham/finite.h"

namespace gingham::bind {

namespace {

// The first ivf_doc_ids entry outside [0, n_docs), or -1.
int64_t first_bad_doc_id(const int32_t* ids, int64_t n, int64_t n_docs) {
  py::gil_scoped_release release;
  for (int64_t e = 0; e < n; ++e) {
    if (ids[e] < 0 || ids[e] >= n_docs) return e;
  }
  return -1;
}

}  // namespace

Codec::Codec(const py::object& c, const py::object& cutoffs, const py::object& weights,
             int nbits) {
  require(valid_nbits(nbits), "nbits must be 1, 2 or 4; got " + std::to_string(nbits));
  centroids = float32_matrix(c, "centroids", -1);
  const int64_t n_centroids = centroids.shape(0), dim = centroids.shape(1);
  require(n_centroids >= 1 && n_centroids <= (int64_t{1} << 31) - 1,
          "centroids must hold between 1 and 2^31 - 1 rows; got " + shape_of(centroids));
  require(dim >= 1 && dim * nbits % 8 == 0,
          "centroids: dim * nbits must be a positive multiple of 8; got dim " +
              std::to_string(dim) + ", nbits " + std::to_string(nbits));
  const int64_t n_buckets = int64_t{1} << nbits;
  if (!cutoffs.is_none()) {
    bucket_cutoffs = float32_matrix(cutoffs, "bucket_cutoffs", n_buckets - 1);
    require(bucket_cutoffs.shape(0) == dim, "bucket_cutoffs must have shape (" +
                                                std::to_string(dim) + ", " +
                                                std::to_string(n_buckets - 1) + "); got " +
                                                shape_of(bucket_cutoffs));
    check_finite_f32(bucket_cutoffs.data(), dim * (n_buckets - 1), n_buckets - 1,
                     "bucket_cutoffs");
    view.cutoffs = bucket_cutoffs.data();
  }
  bucket_weights = float32_matrix(weights, "bucket_weights", n_buckets);
  require(bucket_weights.shape(0) == dim, "bucket_weights must have shape (" +
                                              std::to_string(dim) + ", " +
                                              std::to_string(n_buckets) + "); got " +
                                              shape_of(bucket_weights));
  check_finite_f32(centroids.data(), n_centroids * dim, dim, "centroids");
  check_finite_f32(bucket_weights.data(), dim * n_buckets, n_buckets, "bucket_weights");
  view.centroids = centroids.data();
  view.weights = bucket_weights.data();
  view.n_centroids = n_centroids;
  view.dim = dim;
  view.nbits = nbits;
  inv_norms.resize(static_cast<size_t>(n_centroids));
  {
    py::gil_scoped_release release;
    centroid_inv_norms(view, inv_norms.data());
  }
  view.inv_norms = inv_norms.data();
}

ResidualSegment::ResidualSegment(std::shared_ptr<Codec> codec_, const py::object& codes_,
                                 const py::object& residuals_, const py::object& scales_,
                                 const py::object& doc_offsets_, const py::object& ivf_offsets_,
                                 const py::object& ivf_doc_ids_)
    : codec(std::move(codec_)) {
  require(codec != nullptr, "codec must be a Codec");
  const CodecView& c = codec->view;
  if (!py::isinstance<py::array>(codes_)) throw py::type_error("codes must be a numpy array");
  codes = py::reinterpret_borrow<py::array>(codes_);
  view.code_bytes = codes_width(codes, "codes");
  view.codes = codes.data();
  const int64_t n_tokens = codes.shape(0);
  residuals = typed_array<uint8_t>(residuals_, "residuals", 2, "uint8");
  const int64_t row_bytes = residual_row_bytes(c.dim, c.nbits);
  require(residuals.shape(0) == n_tokens && residuals.shape(1) == row_bytes,
          "residuals must have shape (" + std::to_string(n_tokens) + ", " +
              std::to_string(row_bytes) + "); got " + shape_of(residuals));
  view.residuals = static_cast<const uint8_t*>(residuals.data());
  scales = scales_;
  if (!scales.is_none()) {
    view.scales = half_vector(scales, "scales", n_tokens);
    check_finite_f16(view.scales, n_tokens, "scales");
  }
  doc_offsets = int64_vector(doc_offsets_, "doc_offsets");
  check_offsets(doc_offsets, n_tokens, "doc_offsets");
  view.doc_offsets = doc_offsets.data();
  view.n_docs = doc_offsets.shape(0) - 1;
  require(view.n_docs <= (int64_t{1} << 31) - 1,
          "doc_offsets: a segment holds at most 2^31 - 1 documents");
  ivf_doc_ids = typed_array<int32_t>(ivf_doc_ids_, "ivf_doc_ids", 1, "int32");
  ivf_offsets = int64_vector(ivf_offsets_, "ivf_offsets");
  require(ivf_offsets.shape(0) == c.n_centroids + 1,
          "ivf_offsets must hold n_centroids + 1 = " + std::to_string(c.n_centroids + 1) +
              " values; got " + shape_of(ivf_offsets));
  check_offsets(ivf_offsets, ivf_doc_ids.shape(0), "ivf_offsets");
  view.ivf_offsets = ivf_offsets.data();
  view.ivf_doc_ids = ivf_doc_ids.data();
  check_codes_range(view.codes, view.code_bytes, n_tokens, c.n_centroids, "codes");
  const int64_t bad = first_bad_doc_id(view.ivf_doc_ids, ivf_doc_ids.shape(0), view.n_docs);
  if (bad >= 0) {
    throw py::value_error("ivf_doc_ids[" + std::to_string(bad) + "] = " +
                          std::to_string(view.ivf_doc_ids[bad]) + " is out of range [0, " +
                          std::to_string(view.n_docs) + ")");
  }
}

FlatSegment::FlatSegment(const py::object& tokens_, const py::object& doc_offsets_,
                         const py::object& token_scales_)
    : token_scales(token_scales_) {
  if (!py::isinstance<py::array>(tokens_)) throw py::type_error("tokens must be a numpy array");
  tokens = py::reinterpret_borrow<py::array>(tokens_);
  doc_offsets = int64_vector(doc_offsets_, "doc_offsets");
  require(tokens.ndim() == 2, "tokens must be 2-d (T, dim); got " + shape_of(tokens));
  docs = doc_tokens(tokens, doc_offsets, tokens.shape(1), token_scales);
  require(docs.dim >= 1, "tokens must have at least one column");
  const int64_t n = tokens.shape(0) * docs.dim;
  if (docs.dtype == TokenDtype::F32) {
    check_finite_f32(static_cast<const float*>(docs.tokens), n, docs.dim, "tokens");
  } else if (docs.dtype == TokenDtype::F16) {
    check_finite_f16(static_cast<const uint16_t*>(docs.tokens), n, "tokens");
  } else {
    check_finite_f32(docs.token_scales, tokens.shape(0), 1, "token_scales");
  }
}

void register_segments(py::module_& m) {
  py::class_<Codec, std::shared_ptr<Codec>>(
      m, "Codec",
      "A residual codec: centroids (C, dim), bucket_cutoffs (dim, 2^nbits - 1), bucket_weights "
      "(dim, 2^nbits), float32 and finite. Holds the arrays (no copy); checked once here.")
      .def(py::init<const py::object&, const py::object&, const py::object&, int>(),
           py::arg("centroids"), py::arg("bucket_cutoffs"), py::arg("bucket_weights"),
           py::arg("nbits"))
      .def_readonly("centroids", &Codec::centroids)
      .def_property_readonly("bucket_cutoffs",
                             [](const Codec& c) -> py::object {
                               if (c.view.cutoffs == nullptr) return py::none();
                               return c.bucket_cutoffs;
                             })
      .def_readonly("bucket_weights", &Codec::bucket_weights)
      .def_property_readonly("nbits", [](const Codec& c) { return c.view.nbits; })
      .def_property_readonly("dim", [](const Codec& c) { return c.view.dim; })
      .def_property_readonly("n_centroids", [](const Codec& c) { return c.view.n_centroids; });
  py::class_<ResidualSegment, std::shared_ptr<ResidualSegment>>(
      m, "ResidualSegment",
      "One residual segment over a Codec (layout in csrc/gingham/plaid.h). Holds the arrays "
      "(no copy); every code, offset, IVF id and scale is checked once here (O(tokens)).")
      .def(py::init<std::shared_ptr<Codec>, const py::object&, const py::object&,
                    const py::object&, const py::object&, const py::object&,
                    const py::object&>(),
           py::arg("codec"), py::arg("codes"), py::arg("residuals"), py::arg("scales"),
           py::arg("doc_offsets"), py::arg("ivf_offsets"), py::arg("ivf_doc_ids"))
      .def_readonly("codec", &ResidualSegment::codec)
      .def_readonly("codes", &ResidualSegment::codes)
      .def_readonly("residuals", &ResidualSegment::residuals)
      .def_readonly("scales", &ResidualSegment::scales)
      .def_readonly("doc_offsets", &ResidualSegment::doc_offsets)
      .def_property_readonly("n_docs", [](const ResidualSegment& s) { return s.view.n_docs; });
  py::class_<FlatSegment, std::shared_ptr<FlatSegment>>(
      m, "FlatSegment",
      "One flat segment: tokens float32 / float16 / int8 (T, dim) (int8 with token_scales (T,) "
      "float32), doc_offsets int64 (n_docs + 1,). Holds the arrays (no copy); offsets and the "
      "finiteness of tokens / token_scales are checked once here.")
      .def(py::init<const py::object&, const py::object&, const py::object&>(),
           py::arg("tokens"), py::arg("doc_offsets"), py::arg("token_scales") = py::none())
      .def_readonly("tokens", &FlatSegment::tokens)
      .def_readonly("doc_offsets", &FlatSegment::doc_offsets)
      .def_readonly("token_scales", &FlatSegment::token_scales)
      .def_property_readonly("n_docs", [](const FlatSegment& s) { return s.docs.n_docs; });
}

}  // namespace gingham::bind
