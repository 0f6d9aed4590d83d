// gingham._core: the one Python module over csrc/gingham. One file per concept registers its
// functions here; checks.h holds the argument checks they share, segments.h the native codec
// and segment objects. Every entry point checks its buffers (dtype, layout, shape, offsets,
// ranges) before calling a kernel, so no call from Python can read or write out of bounds.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "gingham/kernels/kernels.h"

namespace py = pybind11;

namespace gingham::bind {
void register_runtime(py::module_& m);
void register_maxsim(py::module_& m);
void register_codec_kmeans(py::module_& m);
void register_segments(py::module_& m);
void register_plaid(py::module_& m);
void register_idmap(py::module_& m);
void register_sparse(py::module_& m);
}  // namespace gingham::bind

PYBIND11_MODULE(_core, m) {
  m.doc() = "gingham compiled core: MaxSim, exact and PLAID search, codec, k-means (numpy in/out)";
  gingham::kernels();  // fill the kernel tables once, at import
  gingham::bind::register_runtime(m);
  gingham::bind::register_segments(m);  // classes first: the functions' signatures name them
  gingham::bind::register_maxsim(m);
  gingham::bind::register_codec_kmeans(m);
  gingham::bind::register_plaid(m);
  gingham::bind::register_idmap(m);
  gingham::bind::register_sparse(m);
}
