// Picks the dense panel kernels for the SIMD level in use; only this table names them.
#include "gingham/kernels/kmeans_assign_kernels.h"
#include "gingham/simd_level.h"

namespace gingham {

const DenseKernels& dense_kernels_scalar() {
  static const DenseKernels scalar{panel_dots_scalar, panel_argmax_scalar};
  return scalar;
}

const DenseKernels& dense_kernels() {
#if defined(GINGHAM_X86)
  static const DenseKernels avx2{panel_dots_avx2, panel_argmax_avx2};
  const SimdLevel level = simd_level();
  if (level == SimdLevel::AVX2 || level == SimdLevel::AVX512) return avx2;
#endif
  return dense_kernels_scalar();
}

}  // namespace gingham
