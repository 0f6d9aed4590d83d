// The native objects an opened index holds: a residual codec, residual segments and flat
// segments. Each keeps references to the (memory-mapped) numpy arrays it was built from, no
// copies, and checks every invariant the kernels rely on once, at construction, with the GIL
// released for the scans. Searches then take the objects and check only their own arguments.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "gingham/codec.h"
#include "gingham/maxsim.h"
#include "gingham/plaid.h"

namespace gingham::bind {

namespace py = pybind11;

// centroids (C, dim), bucket_cutoffs (dim, 2^nbits - 1) (None: a codec that only decodes and
// searches), bucket_weights (dim, 2^nbits), all float32 and finite; 1 <= C < 2^31; dim * nbits
// a multiple of 8.
struct Codec {
  Codec(const py::object& centroids, const py::object& bucket_cutoffs,
        const py::object& bucket_weights, int nbits);
  py::array_t<float> centroids, bucket_cutoffs, bucket_weights;
  std::vector<float> inv_norms;  // 1 / |centroid| (codec.h), computed once here
  CodecView view;
};

// codes uint16/uint32 (T,) < C, residuals uint8 (T, dim * nbits / 8), scales float16 (T,)
// finite (or None: all 1), doc_offsets int64 (n_docs + 1,), ivf_offsets int64 (C + 1,) over
// ivf_doc_ids int32 in [0, n_docs); offsets start at 0, never decrease, end at their length.
struct ResidualSegment {
  ResidualSegment(std::shared_ptr<Codec> codec, const py::object& codes,
                  const py::object& residuals, const py::object& scales,
                  const py::object& doc_offsets, const py::object& ivf_offsets,
                  const py::object& ivf_doc_ids);
  std::shared_ptr<Codec> codec;
  py::array codes, residuals;
  py::object scales;
  py::array_t<int64_t> doc_offsets, ivf_offsets;
  py::array_t<int32_t> ivf_doc_ids;
  SegmentView view;
};

// tokens float32 / float16 (finite) or int8 with token_scales float32 (T,) (finite), doc_offsets
// int64 (n_docs + 1,).
struct FlatSegment {
  FlatSegment(const py::object& tokens, const py::object& doc_offsets,
              const py::object& token_scales);
  py::array tokens;
  py::array_t<int64_t> doc_offsets;
  py::object token_scales;
  DocTokens docs;
};

void register_segments(py::module_& m);

}  // namespace gingham::bind
