// gingham._core: the only file that includes pybind11. Each binding checks buffers (dtype,
// shape, contiguity, offsets), releases the GIL, calls csrc/gingham, and returns numpy arrays.
// The Python layer (python/gingham/_validate.py) converts user input and gives the friendlier
// messages first; these checks keep the process safe when _core is called directly.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "gingham/finite.h"
#include "gingham/maxsim.h"
#include "gingham/quantize.h"
#include "gingham/simd_level.h"
#include "gingham/threads.h"

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

py::array_t<float> py_maxsim_scores_subset(const py::array& query, const py::array& tokens,
                                           const py::array& doc_offsets,
                                           const py::array& doc_ids,
                                           const py::object& token_scales) {
  auto q = float32_matrix(query, "query", -1);
  require(q.shape(0) > 0 && q.shape(1) > 0, "query must not be empty; got shape " + shape_of(q));
  auto offsets = int64_vector(doc_offsets, "doc_offsets");
  const DocTokens docs = doc_tokens(tokens, offsets, q.shape(1), token_scales);
  auto ids = int64_vector(doc_ids, "doc_ids");
  for (int64_t i = 0; i < ids.shape(0); ++i) {
    require(ids.data()[i] >= 0 && ids.data()[i] < docs.n_docs,
            "doc_ids[" + std::to_string(i) + "] = " + std::to_string(ids.data()[i]) +
                " is out of range [0, " + std::to_string(docs.n_docs) + ")");
  }
  py::array_t<float> scores(ids.shape(0));
  {
    py::gil_scoped_release release;
    maxsim_scores_subset(q.data(), q.shape(0), docs, ids.data(), ids.shape(0),
                         scores.mutable_data());
  }
  return scores;
}

py::tuple py_exact_search(const py::array& queries, const py::array& query_offsets,
                          const py::array& tokens, const py::array& doc_offsets, int64_t k,
                          const py::object& token_scales) {
  auto q = float32_matrix(queries, "queries", -1);
  require(q.shape(1) > 0, "queries must have at least one column");
  auto q_offsets = int64_vector(query_offsets, "query_offsets");
  check_offsets(q_offsets, q.shape(0), "query_offsets");
  const int64_t n_queries = q_offsets.shape(0) - 1;
  for (int64_t i = 0; i < n_queries; ++i) {
    require(q_offsets.data()[i + 1] > q_offsets.data()[i],
            "query " + std::to_string(i) + " is empty: every query needs at least one token");
  }
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
}
