// Argument checks shared by every binding file: dtype, layout, shape, offsets, ranges and
// finiteness of numpy buffers. Each raises TypeError (wrong dtype) or ValueError (anything else)
// whose message starts with the argument's name. Scans over array contents run with the GIL
// released.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // in every binding file: one set of type casters

#include <cstdint>
#include <string>
#include <utility>

#include "gingham/maxsim.h"

namespace gingham::bind {

namespace py = pybind11;

std::string shape_of(const py::array& a);
std::string dtype_of(const py::array& a);
void require(bool ok, const std::string& message);
void require_layout(const py::array& a, const std::string& name, py::ssize_t ndim,
                    const char* dtypes);
bool is_float16(const py::array& a);

// A C-contiguous ndim-d array of T, or TypeError / ValueError naming the argument.
template <typename T>
py::array_t<T> typed_array(const py::handle& h, const std::string& name, py::ssize_t ndim,
                           const char* dtype_name) {
  if (!py::isinstance<py::array_t<T>>(h)) {
    throw py::type_error(name + " must be " + dtype_name + "; got " +
                         (py::isinstance<py::array>(h)
                              ? dtype_of(py::reinterpret_borrow<py::array>(h))
                              : std::string(py::str(py::type::of(h).attr("__name__")))));
  }
  auto a = py::reinterpret_borrow<py::array_t<T>>(h);
  require_layout(a, name, ndim, dtype_name);
  return a;
}

// float32 (n, dim) (dim < 0: any width).
py::array_t<float> float32_matrix(const py::handle& a, const std::string& name, int64_t dim);
py::array_t<int64_t> int64_vector(const py::handle& a, const std::string& name);
// float16 vector of n values; the data as IEEE binary16 bits.
const uint16_t* half_vector(const py::handle& a, const std::string& name, int64_t n);

// offsets: n + 1 values, starting at 0, non-decreasing, ending at n_rows.
void check_offsets(const py::array_t<int64_t>& offsets, int64_t n_rows, const std::string& name);
// Every value finite (float32 of row_len columns, or float16 bits).
void check_finite_f32(const float* values, int64_t n, int64_t row_len, const std::string& name);
void check_finite_f16(const uint16_t* values, int64_t n, const std::string& name);

// codes: uint16 or uint32 vector; returns the byte width.
int codes_width(const py::array& codes, const std::string& name);
// Every code below n_centroids.
void check_codes_range(const void* codes, int width, int64_t n, int64_t n_centroids,
                       const std::string& name);
// doc_ids: int64 (m,), every value in [0, n_docs).
py::array_t<int64_t> doc_id_vector(const py::handle& doc_ids, int64_t n_docs,
                                   const std::string& name);

// tokens float32 / float16 / int8 (T, dim) with token_scales (T,) float32 for int8, and checked
// doc_offsets (n + 1,).
DocTokens doc_tokens(const py::array& tokens, const py::array_t<int64_t>& offsets, int64_t dim,
                     const py::object& token_scales);

// Stacked queries (rows, d) float32 with query_offsets (n_queries + 1): every query non-empty.
std::pair<py::array_t<float>, py::array_t<int64_t>> query_batch(const py::handle& queries,
                                                                const py::handle& query_offsets);

}  // namespace gingham::bind
