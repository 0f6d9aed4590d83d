// gingham._core: the only file that includes pybind11. Each binding checks buffers (dtype,
// shape, contiguity, offsets), releases the GIL, calls csrc/gingham, and returns numpy arrays.
// The Python layer (python/gingham/_validate.py) converts user input and gives the friendlier
// messages first; these checks keep the process safe when _core is called directly.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <utility>

#include "gingham/finite.h"
#include "gingham/maxsim.h"
#include "gingham/quantize.h"
#include "gingham/simd_level.h"
#include "gingham/threads.h"
// compressed index
#include <cmath>
#include <vector>

#include "gingham/codec.h"
#include "gingham/ivf.h"
#include "gingham/kmeans.h"
#include "gingham/plaid.h"

namespace py = pybind11;
using namespace gingham;

namespace {

// ---- argument checks -------------------------------------------------------------------------

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

std::string dtype_of(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

void require(bool ok, const std::string& message) {
  if (!ok) throw py::value_error(message);
}

void require_layout(const py::array& a, const char* name, py::ssize_t ndim, const char* dtypes) {
  if (a.ndim() != ndim || !(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be a C-contiguous " + std::to_string(ndim) +
                          "-d array of " + dtypes + "; got " + dtype_of(a) + " " + shape_of(a));
  }
}

py::array_t<float> float32_matrix(const py::array& a, const char* name, int64_t dim) {
  if (!py::isinstance<py::array_t<float>>(a)) {
    throw py::type_error(std::string(name) + " must be float32; got " + dtype_of(a));
  }
  require_layout(a, name, 2, "float32");
  require(dim < 0 || a.shape(1) == dim, std::string(name) + " must have " + std::to_string(dim) +
                                            " columns; got shape " + shape_of(a));
  return py::reinterpret_borrow<py::array_t<float>>(a);
}

py::array_t<int64_t> int64_vector(const py::array& a, const char* name) {
  if (!py::isinstance<py::array_t<int64_t>>(a)) {
    throw py::type_error(std::string(name) + " must be int64; got " + dtype_of(a));
  }
  require_layout(a, name, 1, "int64");
  return py::reinterpret_borrow<py::array_t<int64_t>>(a);
}

// offsets: n + 1 values, starting at 0, non-decreasing, ending at n_rows.
void check_offsets(const py::array_t<int64_t>& offsets, int64_t n_rows, const char* name) {
  const int64_t n = offsets.shape(0);
  const int64_t* o = offsets.data();
  require(n >= 1, std::string(name) + " must hold at least one value (0)");
  require(o[0] == 0, std::string(name) + "[0] must be 0; got " + std::to_string(o[0]));
  for (int64_t i = 1; i < n; ++i) {
    if (o[i] < o[i - 1]) {
      throw py::value_error(std::string(name) + " must be non-decreasing; " + name + "[" +
                            std::to_string(i) + "] = " + std::to_string(o[i]) + " < " +
                            std::to_string(o[i - 1]));
    }
  }
  require(o[n - 1] == n_rows, std::string(name) + " must end at " + std::to_string(n_rows) +
                                  " (the number of rows); got " + std::to_string(o[n - 1]));
}

// tokens as DocTokens: float32, float16, or int8 with token_scales (T,) float32; (T, dim),
// with checked offsets.
DocTokens doc_tokens(const py::array& tokens, const py::array_t<int64_t>& offsets, int64_t dim,
                     const py::object& token_scales = py::none()) {
  const bool is_f16 = tokens.dtype().kind() == 'f' && tokens.dtype().itemsize() == 2;
  const bool is_i8 = py::isinstance<py::array_t<int8_t>>(tokens);
  if (!is_f16 && !is_i8 && !py::isinstance<py::array_t<float>>(tokens)) {
    throw py::type_error("tokens must be float32, float16 or int8 (with token_scales); got " +
                         dtype_of(tokens));
  }
  require_layout(tokens, "tokens", 2, "float32, float16 or int8");
  require(tokens.shape(1) == dim, "tokens must have " + std::to_string(dim) +
                                      " columns (the query dim); got shape " + shape_of(tokens));
  check_offsets(offsets, tokens.shape(0), "doc_offsets");
  DocTokens docs;
  docs.tokens = tokens.data();
  docs.dtype = is_f16 ? TokenDtype::F16 : (is_i8 ? TokenDtype::I8 : TokenDtype::F32);
  docs.dim = dim;
  docs.doc_offsets = offsets.data();
  docs.n_docs = offsets.shape(0) - 1;
  require(is_i8 == !token_scales.is_none(),
          is_i8 ? "int8 tokens need token_scales (T,) float32"
                : "token_scales is only for int8 tokens; got " + dtype_of(tokens) + " tokens");
  if (is_i8) {
    const py::array scales = token_scales.cast<py::array>();
    if (!py::isinstance<py::array_t<float>>(scales)) {
      throw py::type_error("token_scales must be float32; got " + dtype_of(scales));
    }
    require_layout(scales, "token_scales", 1, "float32");
    require(scales.shape(0) == tokens.shape(0),
            "token_scales must have one value per token row (" + std::to_string(tokens.shape(0)) +
                "); got shape " + shape_of(scales));
    docs.token_scales = static_cast<const float*>(scales.data());
  }
  return docs;
}

// ---- bindings --------------------------------------------------------------------------------

py::array_t<float> py_maxsim_scores(const py::array& query, const py::array& tokens,
                                    const py::array& doc_offsets,
                                    const py::object& token_scales) {
  auto q = float32_matrix(query, "query", -1);
  require(q.shape(0) > 0 && q.shape(1) > 0, "query must not be empty; got shape " + shape_of(q));
  auto offsets = int64_vector(doc_offsets, "doc_offsets");
  const DocTokens docs = doc_tokens(tokens, offsets, q.shape(1), token_scales);
  py::array_t<float> scores(docs.n_docs);
  {
    py::gil_scoped_release release;
    maxsim_scores(q.data(), q.shape(0), docs, scores.mutable_data());
  }
  return scores;
}

// doc_ids: int64 (m,), every value a document index in [0, n_docs).
py::array_t<int64_t> doc_id_vector(const py::array& doc_ids, int64_t n_docs) {
  auto ids = int64_vector(doc_ids, "doc_ids");
  for (int64_t i = 0; i < ids.shape(0); ++i) {
    require(ids.data()[i] >= 0 && ids.data()[i] < n_docs,
            "doc_ids[" + std::to_string(i) + "] = " + std::to_string(ids.data()[i]) +
                " is out of range [0, " + std::to_string(n_docs) + ")");
  }
  return ids;
}

py::array_t<float> py_maxsim_scores_subset(const py::array& query, const py::array& tokens,
                                           const py::array& doc_offsets,
                                           const py::array& doc_ids,
                                           const py::object& token_scales) {
  auto q = float32_matrix(query, "query", -1);
  require(q.shape(0) > 0 && q.shape(1) > 0, "query must not be empty; got shape " + shape_of(q));
  auto offsets = int64_vector(doc_offsets, "doc_offsets");
  const DocTokens docs = doc_tokens(tokens, offsets, q.shape(1), token_scales);
  auto ids = doc_id_vector(doc_ids, docs.n_docs);
  py::array_t<float> scores(ids.shape(0));
  {
    py::gil_scoped_release release;
    maxsim_scores_subset(q.data(), q.shape(0), docs, ids.data(), ids.shape(0),
                         scores.mutable_data());
  }
  return scores;
}

// Stacked queries (rows, d) float32 with query_offsets (n_queries + 1): every query non-empty.
std::pair<py::array_t<float>, py::array_t<int64_t>> query_batch(const py::array& queries,
                                                                const py::array& query_offsets) {
  auto q = float32_matrix(queries, "queries", -1);
  require(q.shape(1) > 0, "queries must have at least one column");
  auto q_offsets = int64_vector(query_offsets, "query_offsets");
  check_offsets(q_offsets, q.shape(0), "query_offsets");
  const int64_t n_queries = q_offsets.shape(0) - 1;
  for (int64_t i = 0; i < n_queries; ++i) {
    require(q_offsets.data()[i + 1] > q_offsets.data()[i],
            "query " + std::to_string(i) + " is empty: every query needs at least one token");
  }
  return {q, q_offsets};
}

py::tuple py_exact_search(const py::array& queries, const py::array& query_offsets,
                          const py::array& tokens, const py::array& doc_offsets, int64_t k,
                          const py::object& token_scales) {
  auto [q, q_offsets] = query_batch(queries, query_offsets);
  const int64_t n_queries = q_offsets.shape(0) - 1;
  require(k > 0, "k must be a positive integer; got " + std::to_string(k));
  auto offsets = int64_vector(doc_offsets, "doc_offsets");
  const DocTokens docs = doc_tokens(tokens, offsets, q.shape(1), token_scales);
  const int64_t k_out = std::min<int64_t>(k, count_nonempty_docs(docs.doc_offsets, docs.n_docs));
  py::array_t<float> out_scores({n_queries, k_out});
  py::array_t<int64_t> out_ids({n_queries, k_out});
  {
    py::gil_scoped_release release;
    exact_search(q.data(), q_offsets.data(), n_queries, docs, k, out_scores.mutable_data(),
                 out_ids.mutable_data());
  }
  return py::make_tuple(out_scores, out_ids);
}

int64_t py_first_nonfinite(const py::array& values) {
  require(values.flags() & py::array::c_style, "values must be C-contiguous");
  const bool is_f16 = values.dtype().kind() == 'f' && values.dtype().itemsize() == 2;
  if (is_f16) {
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

void py_set_simd_level(const std::string& name) {
  SimdLevel level;
  if (!parse_simd_level(name.c_str(), &level)) {
    throw py::value_error("unknown SIMD level '" + name +
                          "'; expected one of scalar, avx2, avx512, neon");
  }
  if (!set_simd_level(level)) {
    throw py::value_error(std::string("SIMD level '") + name + "' is not supported here (best: " +
                          simd_level_name(detect_simd_level()) + ")");
  }
}

std::vector<std::string> py_supported_simd_levels() {
  std::vector<std::string> names;
  for (SimdLevel level : {SimdLevel::Scalar, SimdLevel::AVX2, SimdLevel::AVX512, SimdLevel::NEON}) {
    if (simd_level_supported(level)) names.emplace_back(simd_level_name(level));
  }
  return names;
}

// ---- int8 token storage (issue 9) -----------------------------------------------------------

py::tuple py_quantize_int8(const py::array& tokens) {
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

void bind_int8_storage(py::module_& m) {
  m.def("quantize_int8", &py_quantize_int8, py::arg("tokens"),
        "Symmetric per-token int8 quantization of finite float32 tokens (T, d) -> (values int8 "
        "(T, d), scales float32 (T,)) with token ~= scale * values, values in [-127, 127].");
}

}  // namespace

// ---- compressed index (k-means, codec, ivf, plaid) -------------------------------------------
namespace {

template <typename T>
py::array_t<T> typed_array(const py::array& a, const char* name, py::ssize_t ndim,
                           const char* dtype_name) {
  if (!py::isinstance<py::array_t<T>>(a)) {
    throw py::type_error(std::string(name) + " must be " + dtype_name + "; got " + dtype_of(a));
  }
  require_layout(a, name, ndim, dtype_name);
  return py::reinterpret_borrow<py::array_t<T>>(a);
}

// A float16 vector of n values (token scales), checked; the data as IEEE binary16 bits.
const uint16_t* half_vector(const py::array& a, const std::string& name, int64_t n) {
  if (!(a.dtype().kind() == 'f' && a.dtype().itemsize() == 2)) {
    throw py::type_error(name + " must be float16; got " + dtype_of(a));
  }
  require_layout(a, name.c_str(), 1, "float16");
  require(a.shape(0) == n, name + " must hold " + std::to_string(n) + " values (one per token); "
                              "got " + shape_of(a));
  return static_cast<const uint16_t*>(a.data());
}

CodecView codec_view(const py::array& centroids, const py::array* weights,
                     const py::array* cutoffs, int nbits, py::array_t<float>* keep_c,
                     py::array_t<float>* keep_w, py::array_t<float>* keep_cut) {
  require(valid_nbits(nbits), "nbits must be 1, 2 or 4; got " + std::to_string(nbits));
  *keep_c = float32_matrix(centroids, "centroids", -1);
  CodecView v;
  v.centroids = keep_c->data();
  v.n_centroids = keep_c->shape(0);
  v.dim = keep_c->shape(1);
  v.nbits = nbits;
  require(v.n_centroids >= 1, "centroids must hold at least one row");
  require(v.n_centroids <= (int64_t{1} << 31) - 1, "at most 2^31 - 1 centroids are supported");
  require(v.dim * nbits % 8 == 0, "dim * nbits must be a multiple of 8; got dim " +
                                      std::to_string(v.dim) + ", nbits " + std::to_string(nbits));
  const int64_t n_buckets = int64_t{1} << nbits;
  if (weights != nullptr) {
    *keep_w = float32_matrix(*weights, "bucket_weights", n_buckets);
    require(keep_w->shape(0) == v.dim, "bucket_weights must have shape (" +
                                           std::to_string(v.dim) + ", " +
                                           std::to_string(n_buckets) + "); got " +
                                           shape_of(*keep_w));
    v.weights = keep_w->data();
  }
  if (cutoffs != nullptr) {
    *keep_cut = float32_matrix(*cutoffs, "bucket_cutoffs", n_buckets - 1);
    require(keep_cut->shape(0) == v.dim, "bucket_cutoffs must have shape (" +
                                             std::to_string(v.dim) + ", " +
                                             std::to_string(n_buckets - 1) + "); got " +
                                             shape_of(*keep_cut));
    v.cutoffs = keep_cut->data();
  }
  return v;
}

// codes: uint16 or uint32 vector; returns the byte width.
int codes_width(const py::array& codes, const char* name) {
  require_layout(codes, name, 1, "uint16 or uint32");
  const bool u16 = py::isinstance<py::array_t<uint16_t>>(codes);
  const bool u32 = py::isinstance<py::array_t<uint32_t>>(codes);
  if (!u16 && !u32) {
    throw py::type_error(std::string(name) + " must be uint16 or uint32; got " + dtype_of(codes));
  }
  return u16 ? 2 : 4;
}

void check_codes_range(const py::array& codes, int width, int64_t n_centroids, const char* name) {
  const int64_t n = codes.shape(0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = code_at(codes.data(), width, i);
    if (c >= n_centroids) {
      throw py::value_error(std::string(name) + "[" + std::to_string(i) + "] = " +
                            std::to_string(c) + " is not below n_centroids = " +
                            std::to_string(n_centroids));
    }
  }
}

// Holds the numpy arrays of one segment alive while its SegmentView is in use.
struct SegmentArrays {
  py::array codes, residuals, scales, doc_offsets, ivf_offsets, ivf_doc_ids, mask;
};

// Shape and dtype checks of one segment tuple; O(n_docs + n_centroids). Contents of codes and
// ivf_doc_ids (O(tokens)) are checked by check_segment, once when a segment is loaded.
SegmentView segment_view(const py::handle& item, const CodecView& codec, int64_t doc_base,
                         const std::string& name, SegmentArrays* keep) {
  auto t = py::reinterpret_borrow<py::tuple>(item);
  require(py::isinstance<py::tuple>(item) && t.size() == 7,
          name + " must be a tuple (codes, residuals, scales or None, doc_offsets, "
                 "ivf_offsets, ivf_doc_ids, mask or None)");
  SegmentView v;
  keep->codes = t[0].cast<py::array>();
  v.code_bytes = codes_width(keep->codes, (name + ".codes").c_str());
  v.codes = keep->codes.data();
  const int64_t n_tokens = keep->codes.shape(0);
  keep->residuals = typed_array<uint8_t>(t[1].cast<py::array>(), (name + ".residuals").c_str(),
                                         2, "uint8");
  const int64_t row_bytes = residual_row_bytes(codec.dim, codec.nbits);
  require(keep->residuals.shape(0) == n_tokens && keep->residuals.shape(1) == row_bytes,
          name + ".residuals must have shape (" + std::to_string(n_tokens) + ", " +
              std::to_string(row_bytes) + "); got " + shape_of(keep->residuals));
  v.residuals = static_cast<const uint8_t*>(keep->residuals.data());
  if (!t[2].is_none()) {
    keep->scales = t[2].cast<py::array>();
    v.scales = half_vector(keep->scales, name + ".scales", n_tokens);
  }
  auto offsets = int64_vector(t[3].cast<py::array>(), (name + ".doc_offsets").c_str());
  check_offsets(offsets, n_tokens, (name + ".doc_offsets").c_str());
  keep->doc_offsets = offsets;
  v.doc_offsets = offsets.data();
  v.n_docs = offsets.shape(0) - 1;
  auto ivf_offsets = int64_vector(t[4].cast<py::array>(), (name + ".ivf_offsets").c_str());
  require(ivf_offsets.shape(0) == codec.n_centroids + 1,
          name + ".ivf_offsets must hold n_centroids + 1 = " +
              std::to_string(codec.n_centroids + 1) + " values; got " + shape_of(ivf_offsets));
  keep->ivf_doc_ids = typed_array<int32_t>(t[5].cast<py::array>(),
                                           (name + ".ivf_doc_ids").c_str(), 1, "int32");
  check_offsets(ivf_offsets, keep->ivf_doc_ids.shape(0), (name + ".ivf_offsets").c_str());
  keep->ivf_offsets = ivf_offsets;
  v.ivf_offsets = ivf_offsets.data();
  v.ivf_doc_ids = static_cast<const int32_t*>(keep->ivf_doc_ids.data());
  if (!t[6].is_none()) {
    keep->mask = typed_array<uint8_t>(t[6].cast<py::array>(), (name + ".mask").c_str(), 1,
                                      "uint8");
    require(keep->mask.shape(0) == v.n_docs, name + ".mask must hold n_docs = " +
                                                 std::to_string(v.n_docs) + " values; got " +
                                                 shape_of(keep->mask));
    v.mask = static_cast<const uint8_t*>(keep->mask.data());
  }
  v.doc_base = doc_base;
  return v;
}

py::array_t<float> py_kmeans_fit(const py::array& x, int64_t n_centroids, int64_t n_iters,
                                 uint64_t seed, const py::object& init) {
  auto data = float32_matrix(x, "x", -1);
  const int64_t n = data.shape(0), dim = data.shape(1);
  require(dim > 0, "x must have at least one column");
  require(n_centroids >= 1 && n_centroids <= n,
          "n_centroids must be in [1, n_points = " + std::to_string(n) + "]; got " +
              std::to_string(n_centroids));
  require(n_iters >= 0, "n_iters must be >= 0; got " + std::to_string(n_iters));
  py::array_t<float> init_arr;
  if (!init.is_none()) {
    init_arr = float32_matrix(init.cast<py::array>(), "init", dim);
    require(init_arr.shape(0) == n_centroids, "init must have n_centroids = " +
                                                  std::to_string(n_centroids) + " rows; got " +
                                                  shape_of(init_arr));
  }
  py::array_t<float> out({n_centroids, dim});
  KMeansParams params;
  params.n_centroids = n_centroids;
  params.n_iters = n_iters;
  params.seed = seed;
  {
    py::gil_scoped_release release;
    kmeans_train(data.data(), n, dim, params, init.is_none() ? nullptr : init_arr.data(),
                 out.mutable_data());
  }
  return out;
}

py::array_t<int32_t> py_kmeans_assign(const py::array& x, const py::array& centroids) {
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
          "need 0 <= count <= n; got n = " + std::to_string(n) + ", count = " +
              std::to_string(count));
  py::array_t<int64_t> out(count);
  sample_without_replacement(n, count, seed, out.mutable_data());
  return out;
}

py::tuple py_codec_fit_buckets(const py::array& x, const py::array& codes,
                               const py::array& centroids, int nbits) {
  py::array_t<float> kc, kw, kcut;
  CodecView codec = codec_view(centroids, nullptr, nullptr, nbits, &kc, &kw, &kcut);
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

py::tuple py_codec_encode(const py::array& x, const py::array& centroids,
                          const py::array& cutoffs, const py::array& weights, int nbits) {
  py::array_t<float> kc, kw, kcut;
  CodecView codec = codec_view(centroids, &weights, &cutoffs, nbits, &kc, &kw, &kcut);
  auto data = float32_matrix(x, "x", codec.dim);
  const int64_t n = data.shape(0);
  const int width = code_bytes_for(codec.n_centroids);
  py::array codes = width == 2 ? py::array(py::array_t<uint16_t>(n))
                               : py::array(py::array_t<uint32_t>(n));
  py::array_t<uint8_t> residuals({n, residual_row_bytes(codec.dim, nbits)});
  py::array_t<uint16_t> scale_bits(n);
  {
    py::gil_scoped_release release;
    encode(codec, data.data(), n, codes.mutable_data(), residuals.mutable_data(),
           scale_bits.mutable_data());
  }
  return py::make_tuple(codes, residuals, scale_bits.attr("view")("float16"));
}

py::array_t<float> py_codec_decode(const py::array& codes, const py::array& residuals,
                                   const py::object& scales, const py::array& centroids,
                                   const py::array& weights, int nbits) {
  py::array_t<float> kc, kw, kcut;
  CodecView codec = codec_view(centroids, &weights, nullptr, nbits, &kc, &kw, &kcut);
  const int width = codes_width(codes, "codes");
  const int64_t n = codes.shape(0);
  auto res = typed_array<uint8_t>(residuals, "residuals", 2, "uint8");
  require(res.shape(0) == n && res.shape(1) == residual_row_bytes(codec.dim, nbits),
          "residuals must have shape (" + std::to_string(n) + ", " +
              std::to_string(residual_row_bytes(codec.dim, nbits)) + "); got " + shape_of(res));
  check_codes_range(codes, width, codec.n_centroids, "codes");
  const uint16_t* scale_bits =
      scales.is_none() ? nullptr : half_vector(scales.cast<py::array>(), "scales", n);
  py::array_t<float> out({n, codec.dim});
  {
    py::gil_scoped_release release;
    decode(codec, codes.data(), width, res.data(), scale_bits, n, out.mutable_data());
  }
  return out;
}

py::tuple py_ivf_build(const py::array& codes, const py::array& doc_offsets, int64_t n_centroids) {
  const int width = codes_width(codes, "codes");
  require(n_centroids >= 1, "n_centroids must be >= 1");
  check_codes_range(codes, width, n_centroids, "codes");
  auto offsets = int64_vector(doc_offsets, "doc_offsets");
  check_offsets(offsets, codes.shape(0), "doc_offsets");
  require(offsets.shape(0) - 1 < (int64_t{1} << 31), "a segment holds at most 2^31 - 1 documents");
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

void py_check_segment(const py::tuple& segment, int64_t n_centroids, int64_t dim, int nbits) {
  // A stand-in codec (no arrays touched) for the shape checks.
  CodecView codec;
  codec.n_centroids = n_centroids;
  codec.dim = dim;
  codec.nbits = nbits;
  require(valid_nbits(nbits) && dim * nbits % 8 == 0, "invalid dim / nbits");
  SegmentArrays keep;
  const SegmentView v = segment_view(segment, codec, 0, "segment", &keep);
  check_codes_range(keep.codes, v.code_bytes, n_centroids, "segment.codes");
  if (v.scales != nullptr) {
    const int64_t bad = first_nonfinite_f16(v.scales, keep.scales.shape(0));
    require(bad < 0, "segment.scales[" + std::to_string(bad) + "] is not finite");
  }
  const int64_t nnz = keep.ivf_doc_ids.shape(0);
  for (int64_t e = 0; e < nnz; ++e) {
    if (v.ivf_doc_ids[e] < 0 || v.ivf_doc_ids[e] >= v.n_docs) {
      throw py::value_error("segment.ivf_doc_ids[" + std::to_string(e) + "] = " +
                            std::to_string(v.ivf_doc_ids[e]) + " is out of range [0, " +
                            std::to_string(v.n_docs) + ")");
    }
  }
}

py::tuple py_plaid_search(const py::array& queries, const py::array& query_offsets,
                          const py::array& centroids, const py::array& weights, int nbits,
                          const py::list& segments, int64_t k, int64_t ncells,
                          float centroid_score_threshold, int64_t ndocs, bool exact) {
  py::array_t<float> kc, kw, kcut;
  CodecView codec = codec_view(centroids, &weights, nullptr, nbits, &kc, &kw, &kcut);
  auto [q, q_offsets] = query_batch(queries, query_offsets);
  require(q.shape(1) == codec.dim, "queries must have " + std::to_string(codec.dim) +
                                       " columns (the codec dim); got shape " + shape_of(q));
  const int64_t n_queries = q_offsets.shape(0) - 1;
  require(k > 0, "k must be a positive integer; got " + std::to_string(k));
  require(ncells > 0, "ncells must be a positive integer; got " + std::to_string(ncells));
  require(ndocs > 0, "ndocs must be a positive integer; got " + std::to_string(ndocs));
  require(!std::isnan(centroid_score_threshold), "centroid_score_threshold must not be NaN");
  std::vector<SegmentArrays> keep(segments.size());
  std::vector<SegmentView> views;
  int64_t base = 0;
  for (size_t s = 0; s < segments.size(); ++s) {
    views.push_back(segment_view(segments[s], codec, base, "segments[" + std::to_string(s) + "]",
                                 &keep[s]));
    base += views.back().n_docs;
  }
  PlaidParams params;
  params.k = k;
  params.ncells = ncells;
  params.centroid_score_threshold = centroid_score_threshold;
  params.ndocs = ndocs;
  params.exact = exact;
  const int64_t k_out = std::min(k, count_searchable_docs(views.data(),
                                                          static_cast<int64_t>(views.size())));
  py::array_t<float> out_scores({n_queries, k_out});
  py::array_t<int64_t> out_ids({n_queries, k_out});
  std::vector<PlaidStats> stats(static_cast<size_t>(n_queries));
  {
    py::gil_scoped_release release;
    plaid_search(codec, views.data(), static_cast<int64_t>(views.size()), q.data(),
                 q_offsets.data(), n_queries, params, out_scores.mutable_data(),
                 out_ids.mutable_data(), stats.data());
  }
  py::array_t<double> out_stats({n_queries, static_cast<int64_t>(kPlaidStatsFields)});
  double* st = out_stats.mutable_data();
  for (int64_t i = 0; i < n_queries; ++i) {
    const PlaidStats& s = stats[i];
    const double row[kPlaidStatsFields] = {s.centroid_ms, s.candidate_ms, s.approx_ms, s.full_ms,
                                           s.topk_ms, double(s.n_cells), double(s.n_candidates),
                                           double(s.n_after_pruning), double(s.n_full)};
    std::copy(row, row + kPlaidStatsFields, st + i * kPlaidStatsFields);
  }
  return py::make_tuple(out_scores, out_ids, out_stats);
}

py::array_t<float> py_plaid_score_docs(const py::array& query, const py::array& centroids,
                                       const py::array& weights, int nbits,
                                       const py::tuple& segment, const py::array& doc_ids) {
  py::array_t<float> kc, kw, kcut;
  CodecView codec = codec_view(centroids, &weights, nullptr, nbits, &kc, &kw, &kcut);
  auto q = float32_matrix(query, "query", codec.dim);
  require(q.shape(0) > 0, "query must hold at least one token");
  SegmentArrays keep;
  const SegmentView v = segment_view(segment, codec, 0, "segment", &keep);
  auto ids = doc_id_vector(doc_ids, v.n_docs);
  py::array_t<float> scores(ids.shape(0));
  {
    py::gil_scoped_release release;
    score_docs_from_codes(codec, v, q.data(), q.shape(0), ids.data(), ids.shape(0),
                          scores.mutable_data());
  }
  return scores;
}

void register_compressed_index(py::module_& m) {
  m.def("kmeans_fit", &py_kmeans_fit, py::arg("x"), py::arg("n_centroids"),
        py::arg("n_iters") = 10, py::arg("seed") = 0, py::arg("init") = py::none(),
        "Lloyd k-means on x (n, d) float32 -> centroids (n_centroids, d) float32. Seeded, "
        "deterministic for any thread count; init (n_centroids, d) replaces the random start.");
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
        "Encode x (n, d) float32 -> (codes uint16/uint32 (n,), residuals uint8 "
        "(n, d*nbits/8), scales float16 (n,)); layout in csrc/gingham/codec.h.");
  m.def("codec_decode", &py_codec_decode, py::arg("codes"), py::arg("residuals"),
        py::arg("scales"), py::arg("centroids"), py::arg("bucket_weights"), py::arg("nbits"),
        "Decode codes (n,) + residuals (n, d*nbits/8) + scales float16 (n,) (None: all 1) -> "
        "float32 (n, d).");
  m.def("ivf_build", &py_ivf_build, py::arg("codes"), py::arg("doc_offsets"),
        py::arg("n_centroids"),
        "Inverted lists: (ivf_offsets int64 (n_centroids+1,), ivf_doc_ids int32) with the "
        "sorted unique documents of each centroid.");
  m.def("check_segment", &py_check_segment, py::arg("segment"), py::arg("n_centroids"),
        py::arg("dim"), py::arg("nbits"),
        "Full check of one segment tuple (codes, residuals, scales, doc_offsets, ivf_offsets, "
        "ivf_doc_ids, mask|None), including code and ivf id ranges (O(tokens)). plaid_search "
        "checks shapes only, so call this once per segment loaded from outside.");
  m.def("plaid_search", &py_plaid_search, py::arg("queries"), py::arg("query_offsets"),
        py::arg("centroids"), py::arg("bucket_weights"), py::arg("nbits"), py::arg("segments"),
        py::arg("k"), py::arg("ncells"), py::arg("centroid_score_threshold"), py::arg("ndocs"),
        py::arg("exact") = false,
        "Staged PLAID search (csrc/gingham/plaid.h) over a list of segment tuples sharing one "
        "codec; global id = offset of the segment + local id. -> (scores float32, ids int64, "
        "each (n_queries, min(k, searchable docs)); stats float64 (n_queries, 9): centroid_ms, "
        "candidate_ms, approx_ms, full_ms, topk_ms, n_cells, n_candidates, n_after_pruning, "
        "n_full).");
  m.def("plaid_score_docs", &py_plaid_score_docs, py::arg("query"), py::arg("centroids"),
        py::arg("bucket_weights"), py::arg("nbits"), py::arg("segment"), py::arg("doc_ids"),
        "MaxSim of query (Lq, d) against the decoded tokens of the segment's documents "
        "doc_ids (m,) int64 -> float32 (m,), computed from the codes; empty document: -inf.");
  m.def("plaid_default_params", [](int64_t k) {
    require(k > 0, "k must be a positive integer; got " + std::to_string(k));
    const PlaidParams p = default_plaid_params(k);
    return py::make_tuple(p.ncells, p.centroid_score_threshold, p.ndocs);
  }, py::arg("k"), "PLAID defaults for k -> (ncells, centroid_score_threshold, ndocs).");
}

}  // namespace
// ---- end compressed index --------------------------------------------------------------------

// ---- masked exact search (durable index) ----------------------------------------------------
namespace {

py::tuple py_exact_search_subset(const py::array& queries, const py::array& query_offsets,
                                 const py::array& tokens, const py::array& doc_offsets,
                                 const py::array& doc_ids, int64_t k,
                                 const py::object& token_scales) {
  auto [q, q_offsets] = query_batch(queries, query_offsets);
  const int64_t n_queries = q_offsets.shape(0) - 1;
  require(k > 0, "k must be a positive integer; got " + std::to_string(k));
  auto offsets = int64_vector(doc_offsets, "doc_offsets");
  const DocTokens docs = doc_tokens(tokens, offsets, q.shape(1), token_scales);
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

void register_masked_exact_search(py::module_& m) {
  m.def("exact_search_subset", &py_exact_search_subset, py::arg("queries"),
        py::arg("query_offsets"), py::arg("tokens"), py::arg("doc_offsets"), py::arg("doc_ids"),
        py::arg("k"), py::arg("token_scales") = py::none(),
        "exact_search restricted to doc_ids (m,) int64, strictly ascending -> (scores float32, "
        "document indices int64), each (n_queries, min(k, non-empty listed documents)); best "
        "first, ties by lower index.");
}

}  // namespace
// ---- end masked exact search -----------------------------------------------------------------

PYBIND11_MODULE(_core, m) {
  m.doc() = "gingham compiled core: MaxSim kernels, top-k, SIMD dispatch (numpy buffers in/out)";

  m.def("maxsim_scores", &py_maxsim_scores, py::arg("query"), py::arg("tokens"),
        py::arg("doc_offsets"), py::arg("token_scales") = py::none(),
        "MaxSim score of one float32 query (Lq, d) against every document of tokens (T, d) "
        "float32/float16 (or int8 with token_scales (T,) float32) with doc_offsets (n+1,) int64 "
        "-> float32 (n,). Empty documents: -inf.");
  m.def("maxsim_scores_subset", &py_maxsim_scores_subset, py::arg("query"), py::arg("tokens"),
        py::arg("doc_offsets"), py::arg("doc_ids"), py::arg("token_scales") = py::none(),
        "MaxSim scores of one query against the documents doc_ids (m,) int64 -> float32 (m,).");
  m.def("exact_search", &py_exact_search, py::arg("queries"), py::arg("query_offsets"),
        py::arg("tokens"), py::arg("doc_offsets"), py::arg("k"),
        py::arg("token_scales") = py::none(),
        "Top-k documents per query. queries (Lq_total, d) float32 with query_offsets "
        "(n_queries+1,) int64 -> (scores float32, doc ids int64), each (n_queries, k_out), "
        "k_out = min(k, non-empty documents); best first, ties by lower id.");
  m.def("first_nonfinite", &py_first_nonfinite, py::arg("values"),
        "Flat index of the first NaN/inf in a float32/float16 array, or -1.");
  m.def("simd_level", []() { return std::string(simd_level_name(simd_level())); },
        "Name of the SIMD level in use: scalar, avx2, avx512 or neon.");
  m.def("detected_simd_level", []() { return std::string(simd_level_name(detect_simd_level())); },
        "Best SIMD level this CPU and build support.");
  m.def("supported_simd_levels", &py_supported_simd_levels,
        "Every SIMD level this CPU and build can run, scalar first.");
  m.def("set_simd_level", &py_set_simd_level, py::arg("name"),
        "Force a supported SIMD level (tests and comparisons).");
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("n_threads must be >= 1; got " + std::to_string(n));
    set_num_threads(n);
  }, py::arg("n_threads"), "Number of threads for every gingham kernel.");
  m.def("get_num_threads", &get_num_threads, "Number of threads gingham kernels use.");

  bind_int8_storage(m);
  register_compressed_index(m);  // compressed index (k-means, codec, ivf, plaid)
  register_masked_exact_search(m);  // durable index: masked exact search
}
