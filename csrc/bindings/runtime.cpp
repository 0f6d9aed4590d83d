// Runtime settings: the SIMD level in use and the thread count.
#include <string>
#include <vector>

#include "checks.h"
#include "gingham/simd_level.h"
#include "gingham/threads.h"

namespace gingham::bind {
namespace {

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

}  // namespace

void register_runtime(py::module_& m) {
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
}

}  // namespace gingham::bind
