// The OpenMP runtime calls gingham makes, usable with or without OpenMP: a build without it
// (no -fopenmp, so _OPENMP is undefined and every omp pragma is ignored) runs each region on
// one thread, and these report exactly that.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#else
inline int omp_get_max_threads() { return 1; }
inline int omp_get_thread_num() { return 0; }
#endif

namespace gingham {
// True when the kernels were compiled with OpenMP (more than one thread is possible).
constexpr bool kHasOpenMP =
#if defined(_OPENMP)
    true;
#else
    false;
#endif
}  // namespace gingham
