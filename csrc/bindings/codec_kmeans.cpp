// k-means, the residual codec (fit, encode, decode) and inverted lists, over numpy buffers.
#include <algorithm>
#include <string>
#include <vector>

#include "checks.h"
#include "gingham/codec.h"
#include "gingham/ivf.h"
#include "gingham/kmeans.h"
#include "segments.h"

namespace gingham::bind {
namespace {

py::array_t<float> py_kmeans_fit(const py::handle& x, int64_t n_centroids, int64_t n_iters,
                                 uint64_t seed, const py::object& init, int64_t neighbors) {
  auto data = float32_matrix(x, "x", -1);
  const int64_t n = data.shape(0), dim = data.shape(1);
  require(dim > 0, "x must have at least one column");
  require(n_centroids >= 1 && n_centroids <= n,
          "n_centroids must be in [1, n_points = " + std::to_string(n) + "]; got " +
              std::to_string(n_centroids));
  require(n_iters >= 0, "n_iters must be >= 0; got " + std::to_string(n_iters));
  require(neighbors >= 0, "neighbors must be >= 0; got " + std::to_string(neighbors));
  check_finite_f32(data.data(), n * dim, dim, "x");
  py::array_t<float> init_arr;
  if (!init.is_none()) {
    init_arr = float32_matrix(init, "init", dim);
    require(init_arr.shape(0) == n_centroids, "init must have n_centroids = " +
                                                  std::to_string(n_centroids) + " rows; got " +
                                                  shape_of(init_arr));
    check_finite_f32(init_arr.data(), n_centroids * dim, dim, "init");
  }
  py::array_t<float> out({n_centroids, dim});
  KMeansParams params;
  params.n_centroids = n_centroids;
  params.n_iters = n_iters;
  params.seed = seed;
  params.n_neighbors = neighbors;
  {
    py::gil_scoped_release release;
    kmeans_train(data.data(), n, dim, params, init.is_none() ? nullptr : init_arr.data(),
                 out.mutable_data());
  }
  return out;
}

py::array_t<int32_t> py_kmeans_assign(const py::handle& x, const py::handle& centroids) {
  auto c = float32_matrix(centroids, "centroids", -1);
  require(c.shape(0) >= 1 && c.shape(0) < (int64_t{1} << 31),
          "centroids must hold between 1 and 2^31 - 1 rows");
  auto data = float32_matrix(x, "x", c.shape(1));
  py::array_t<int32_t> out(data.shape(0));
  {
    py::gil_scoped_release release;
    assign_nearest(data.data(), data.shape(0), data.shape(1), c.data(), c.shape(0),
                   out.mutable_data());
  }
  return out;
}

py::array_t<int64_t> py_sample_indices(int64_t n, int64_t count, uint64_t seed) {
  require(n >= 0 && count >= 0 && count <= n,
          "count: need 0 <= count <= n; got n = " + std::to_string(n) + ", count = " +
              std::to_string(count));
  py::array_t<int64_t> out(count);
  int64_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    sample_without_replacement(n, count, seed, dst);
  }
  return out;
}

// A checked codec for the array-level entry points (no object kept).
Codec codec_of(const py::handle& centroids, const py::object& cutoffs,
               const py::handle& weights, int nbits) {
  return Codec(py::reinterpret_borrow<py::object>(centroids), cutoffs,
               py::reinterpret_borrow<py::object>(weights), nbits);
}

py::tuple py_codec_fit_buckets(const py::handle& x, const py::handle& codes,
                               const py::handle& centroids, int nbits) {
  require(valid_nbits(nbits), "nbits must be 1, 2 or 4; got " + std::to_string(nbits));
  auto c = float32_matrix(centroids, "centroids", -1);
  require(c.shape(0) >= 1 && c.shape(0) < (int64_t{1} << 31),
          "centroids must hold between 1 and 2^31 - 1 rows");
  check_finite_f32(c.data(), c.size(), c.shape(1), "centroids");
  CodecView codec;
  codec.centroids = c.data();
  codec.n_centroids = c.shape(0);
  codec.dim = c.shape(1);
  codec.nbits = nbits;
  require(codec.dim * nbits % 8 == 0, "centroids: dim * nbits must be a multiple of 8");
  auto data = float32_matrix(x, "x", codec.dim);
  require(data.shape(0) >= 1, "x must hold at least one row");
  auto ids = typed_array<int32_t>(codes, "codes", 1, "int32");
  require(ids.shape(0) == data.shape(0), "codes must hold one value per row of x");
  for (int64_t i = 0; i < ids.shape(0); ++i) {
    require(ids.data()[i] >= 0 && ids.data()[i] < codec.n_centroids,
            "codes[" + std::to_string(i) + "] is out of range");
  }
  const int64_t n_buckets = int64_t{1} << nbits;
  py::array_t<float> cutoffs({codec.dim, n_buckets - 1});
  py::array_t<float> weights({codec.dim, n_buckets});
  {
    py::gil_scoped_release release;
    fit_buckets(data.data(), data.shape(0), ids.data(), codec, cutoffs.mutable_data(),
                weights.mutable_data());
  }
  return py::make_tuple(cutoffs, weights);
}

py::tuple py_codec_encode(const py::handle& x, const py::handle& centroids,
                          const py::object& cutoffs, const py::handle& weights, int nbits) {
  require(!cutoffs.is_none(), "bucket_cutoffs must be a float32 array, not None");
  const Codec codec = codec_of(centroids, cutoffs, weights, nbits);
  const CodecView& v = codec.view;
  auto data = float32_matrix(x, "x", v.dim);
  check_finite_f32(data.data(), data.size(), v.dim, "x");
  const int64_t n = data.shape(0);
  const int width = code_bytes_for(v.n_centroids);
  py::array codes = width == 2 ? py::array(py::array_t<uint16_t>(n))
                               : py::array(py::array_t<uint32_t>(n));
  py::array_t<uint8_t> residuals({n, residual_row_bytes(v.dim, nbits)});
  py::array_t<uint16_t> scale_bits(n);
  {
    py::gil_scoped_release release;
    encode(v, data.data(), n, codes.mutable_data(), residuals.mutable_data(),
           scale_bits.mutable_data());
  }
  return py::make_tuple(codes, residuals, scale_bits.attr("view")("float16"));
}

py::array_t<float> py_codec_decode(const py::handle& codes_h, const py::handle& residuals,
                                   const py::object& scales, const py::handle& centroids,
                                   const py::handle& weights, int nbits) {
  const Codec codec = codec_of(centroids, py::none(), weights, nbits);
  const CodecView& v = codec.view;
  if (!py::isinstance<py::array>(codes_h)) throw py::type_error("codes must be a numpy array");
  auto codes = py::reinterpret_borrow<py::array>(codes_h);
  const int width = codes_width(codes, "codes");
  const int64_t n = codes.shape(0);
  auto res = typed_array<uint8_t>(residuals, "residuals", 2, "uint8");
  require(res.shape(0) == n && res.shape(1) == residual_row_bytes(v.dim, nbits),
          "residuals must have shape (" + std::to_string(n) + ", " +
              std::to_string(residual_row_bytes(v.dim, nbits)) + "); got " + shape_of(res));
  check_codes_range(codes.data(), width, n, v.n_centroids, "codes");
  const uint16_t* scale_bits = scales.is_none() ? nullptr : half_vector(scales, "scales", n);
  py::array_t<float> out({n, v.dim});
  {
    py::gil_scoped_release release;
    decode(v, codes.data(), width, res.data(), scale_bits, n, out.mutable_data());
  }
  return out;
}

py::tuple py_ivf_build(const py::handle& codes_h, const py::handle& doc_offsets,
                       int64_t n_centroids) {
  if (!py::isinstance<py::array>(codes_h)) throw py::type_error("codes must be a numpy array");
  auto codes = py::reinterpret_borrow<py::array>(codes_h);
  const int width = codes_width(codes, "codes");
  require(n_centroids >= 1, "n_centroids must be >= 1");
  check_codes_range(codes.data(), width, codes.shape(0), n_centroids, "codes");
  auto offsets = int64_vector(doc_offsets, "doc_offsets");
  check_offsets(offsets, codes.shape(0), "doc_offsets");
  require(offsets.shape(0) - 1 < (int64_t{1} << 31),
          "doc_offsets: a segment holds at most 2^31 - 1 documents");
  py::array_t<int64_t> ivf_offsets(n_centroids + 1);
  std::vector<int32_t> ids;
  {
    py::gil_scoped_release release;
    build_ivf(codes.data(), width, offsets.data(), offsets.shape(0) - 1, n_centroids,
              ivf_offsets.mutable_data(), &ids);
  }
  py::array_t<int32_t> ivf_doc_ids(static_cast<py::ssize_t>(ids.size()));
  std::copy(ids.begin(), ids.end(), ivf_doc_ids.mutable_data());
  return py::make_tuple(ivf_offsets, ivf_doc_ids);
}

}  // namespace

void register_codec_kmeans(py::module_& m) {
  m.def("kmeans_fit", &py_kmeans_fit, py::arg("x"), py::arg("n_centroids"),
        py::arg("n_iters") = 10, py::arg("seed") = 0, py::arg("init") = py::none(),
        py::arg("neighbors") = 0,
        "Lloyd k-means on x (n, d) float32 -> centroids (n_centroids, d) float32. Seeded, "
        "deterministic for any thread count; init (n_centroids, d) replaces the random start. "
        "neighbors m > 0 (below n_centroids): after the first pass each point is compared only "
        "with the m centroids nearest to its current one (0: with every centroid).");
  m.def("kmeans_assign", &py_kmeans_assign, py::arg("x"), py::arg("centroids"),
        "Nearest centroid (L2) of every row of x (n, d) float32 -> int32 (n,); ties -> lower id.");
  m.def("sample_indices", &py_sample_indices, py::arg("n"), py::arg("count"), py::arg("seed"),
        "count distinct indices of [0, n), seeded (splitmix64 partial Fisher-Yates) -> int64.");
  m.def("codec_fit_buckets", &py_codec_fit_buckets, py::arg("x"), py::arg("codes"),
        py::arg("centroids"), py::arg("nbits"),
        "Per-dimension Lloyd-Max bucket cutoffs (d, 2^nbits - 1) and weights (d, 2^nbits) "
        "float32, started at the quantiles, from the residuals of x (n, d) against "
        "centroids[codes] (codes int32 (n,)).");
  m.def("codec_encode", &py_codec_encode, py::arg("x"), py::arg("centroids"),
        py::arg("bucket_cutoffs"), py::arg("bucket_weights"), py::arg("nbits"),
        "Encode finite x (n, d) float32 -> (codes uint16/uint32 (n,), residuals uint8 "
        "(n, d*nbits/8), scales float16 (n,)); layout in csrc/gingham/codec.h.");
  m.def("codec_decode", &py_codec_decode, py::arg("codes"), py::arg("residuals"),
        py::arg("scales"), py::arg("centroids"), py::arg("bucket_weights"), py::arg("nbits"),
        "Decode codes (n,) + residuals (n, d*nbits/8) + scales float16 (n,) (None: all 1) -> "
        "float32 (n, d).");
  m.def("ivf_build", &py_ivf_build, py::arg("codes"), py::arg("doc_offsets"),
        py::arg("n_centroids"),
        "Inverted lists: (ivf_offsets int64 (n_centroids+1,), ivf_doc_ids int32) with the "
        "sorted unique documents of each centroid.");
}

}  // namespace gingham::bind
