// Picks the MaxSim kernels for the SIMD level in use. Each level's functions live in their own
// translation unit; only this table refers to them.
#include "gingham/kernels/maxsim_kernels.h"
#include "gingham/simd_level.h"

namespace gingham {

const MaxSimKernels& maxsim_kernels() {
  static const MaxSimKernels scalar{maxsim_f32_scalar, maxsim_f16_scalar, maxsim_i8_scalar};
#if defined(GINGHAM_X86)
  static const MaxSimKernels avx2{maxsim_f32_avx2, maxsim_f16_avx2, maxsim_i8_avx2};
  static const MaxSimKernels avx512{maxsim_f32_avx512, maxsim_f16_avx512, maxsim_i8_avx512};
#endif
#if defined(__aarch64__)
  static const MaxSimKernels neon{maxsim_f32_neon, maxsim_f16_neon, maxsim_i8_neon};
#endif
  switch (simd_level()) {
#if defined(GINGHAM_X86)
    case SimdLevel::AVX2: return avx2;
    case SimdLevel::AVX512: return avx512;
#endif
#if defined(__aarch64__)
    case SimdLevel::NEON: return neon;
#endif
    default: return scalar;
  }
}

}  // namespace gingham
