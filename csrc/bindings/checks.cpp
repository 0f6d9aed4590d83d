#include "checks.h"

#include <cmath>

#include "gingham/codec.h"
#include "gingham/finite.h"

namespace gingham::bind {

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

std::string dtype_of(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

void require(bool ok, const std::string& message) {
  if (!ok) throw py::value_error(message);
}

void require_layout(const py::array& a, const std::string& name, py::ssize_t ndim,
                    const char* dtypes) {
  if (a.ndim() != ndim || !(a.flags() & py::array::c_style)) {
    throw py::value_error(name + " must be a C-contiguous " + std::to_string(ndim) +
                          "-d array of " + dtypes + "; got " + dtype_of(a) + " " + shape_of(a));
  }
}

bool is_float16(const py::array& a) {
  return a.dtype().kind() == 'f' && a.dtype().itemsize() == 2;
}

py::array_t<float> float32_matrix(const py::handle& a, const std::string& name, int64_t dim) {
  auto m = typed_array<float>(a, name, 2, "float32");
  require(dim < 0 || m.shape(1) == dim,
          name + " must have " + std::to_string(dim) + " columns; got shape " + shape_of(m));
  return m;
}

py::array_t<int64_t> int64_vector(const py::handle& a, const std::string& name) {
  return typed_array<int64_t>(a, name, 1, "int64");
}

const uint16_t* half_vector(const py::handle& h, const std::string& name, int64_t n) {
  if (!py::isinstance<py::array>(h)) throw py::type_error(name + " must be a float16 array");
  if (!is_float16(py::reinterpret_borrow<py::array>(h))) {
    throw py::type_error(name + " must be float16; got " +
                         dtype_of(py::reinterpret_borrow<py::array>(h)));
  }
  auto a = py::reinterpret_borrow<py::array>(h);
  require_layout(a, name, 1, "float16");
  require(a.shape(0) == n, name + " must hold " + std::to_string(n) +
                               " values (one per token); got " + shape_of(a));
  return static_cast<const uint16_t*>(a.data());
}

void check_offsets(const py::array_t<int64_t>& offsets, int64_t n_rows, const std::string& name) {
  const int64_t n = offsets.shape(0);
  const int64_t* o = offsets.data();
  require(n >= 1, name + " must hold at least one value (0)");
  require(o[0] == 0, name + "[0] must be 0; got " + std::to_string(o[0]));
  int64_t bad = -1;
  {
    py::gil_scoped_release release;
    for (int64_t i = 1; i < n && bad < 0; ++i) {
      if (o[i] < o[i - 1]) bad = i;
    }
  }
  if (bad >= 0) {
    throw py::value_error(name + " must be non-decreasing; " + name + "[" +
                          std::to_string(bad) + "] = " + std::to_string(o[bad]) + " < " +
                          std::to_string(o[bad - 1]));
  }
  require(o[n - 1] == n_rows, name + " must end at " + std::to_string(n_rows) +
                                  " (the number of rows); got " + std::to_string(o[n - 1]));
}

void check_finite_f32(const float* values, int64_t n, int64_t row_len, const std::string& name) {
  int64_t bad;
  {
    py::gil_scoped_release release;
    bad = first_nonfinite_f32(values, n);
  }
  if (bad < 0) return;
  const std::string at = row_len > 1 ? std::to_string(bad / row_len) + ", " +
                                           std::to_string(bad % row_len)
                                     : std::to_string(bad);
  throw py::value_error(name + "[" + at + "] is not finite (NaN or inf)");
}

void check_finite_f16(const uint16_t* values, int64_t n, const std::string& name) {
  int64_t bad;
  {
    py::gil_scoped_release release;
    bad = first_nonfinite_f16(values, n);
  }
  if (bad >= 0) {
    throw py::value_error(name + "[" + std::to_string(bad) + "] is not finite (NaN or inf)");
  }
}

int codes_width(const py::array& codes, const std::string& name) {
  const bool u16 = py::isinstance<py::array_t<uint16_t>>(codes);
  const bool u32 = py::isinstance<py::array_t<uint32_t>>(codes);
  if (!u16 && !u32) {
    throw py::type_error(name + " must be uint16 or uint32; got " + dtype_of(codes));
  }
  require_layout(codes, name, 1, "uint16 or uint32");
  return u16 ? 2 : 4;
}

void check_codes_range(const void* codes, int width, int64_t n, int64_t n_centroids,
                       const std::string& name) {
  int64_t bad = -1, value = 0;
  {
    py::gil_scoped_release release;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = code_at(codes, width, i);
      if (c >= n_centroids) {
        bad = i, value = c;
        break;
      }
    }
  }
  if (bad >= 0) {
    throw py::value_error(name + "[" + std::to_string(bad) + "] = " + std::to_string(value) +
                          " is not below n_centroids = " + std::to_string(n_centroids));
  }
}

py::array_t<int64_t> doc_id_vector(const py::handle& doc_ids, int64_t n_docs,
                                   const std::string& name) {
  auto ids = int64_vector(doc_ids, name);
  const int64_t* d = ids.data();
  int64_t bad = -1;
  {
    py::gil_scoped_release release;
    for (int64_t i = 0; i < ids.shape(0); ++i) {
      if (d[i] < 0 || d[i] >= n_docs) {
        bad = i;
        break;
      }
    }
  }
  if (bad >= 0) {
    throw py::value_error(name + "[" + std::to_string(bad) + "] = " + std::to_string(d[bad]) +
                          " is out of range [0, " + std::to_string(n_docs) + ")");
  }
  return ids;
}

DocTokens doc_tokens(const py::array& tokens, const py::array_t<int64_t>& offsets, int64_t dim,
                     const py::object& token_scales) {
  const bool is_f16 = is_float16(tokens);
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
          is_i8 ? "token_scales: int8 tokens need token_scales (T,) float32"
                : "token_scales is only for int8 tokens; got " + dtype_of(tokens) + " tokens");
  if (is_i8) {
    auto scales = typed_array<float>(token_scales, "token_scales", 1, "float32");
    require(scales.shape(0) == tokens.shape(0),
            "token_scales must have one value per token row (" + std::to_string(tokens.shape(0)) +
                "); got shape " + shape_of(scales));
    docs.token_scales = scales.data();
  }
  return docs;
}

std::pair<py::array_t<float>, py::array_t<int64_t>> query_batch(const py::handle& queries,
                                                                const py::handle& query_offsets) {
  auto q = float32_matrix(queries, "queries", -1);
  require(q.shape(1) > 0, "queries must have at least one column");
  auto q_offsets = int64_vector(query_offsets, "query_offsets");
  check_offsets(q_offsets, q.shape(0), "query_offsets");
  const int64_t n_queries = q_offsets.shape(0) - 1;
  for (int64_t i = 0; i < n_queries; ++i) {
    require(q_offsets.data()[i + 1] > q_offsets.data()[i],
            "query_offsets: query " + std::to_string(i) +
                " is empty; every query needs at least one token");
  }
  return {q, q_offsets};
}

}  // namespace gingham::bind
