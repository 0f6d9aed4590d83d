// Fills the kernel table of every SIMD level once; only this file names the per-ISA functions.
#include "gingham/kernels/kernels.h"
#include "gingham/simd_level.h"

namespace gingham {
namespace {

struct Tables {
  Kernels scalar{{maxsim_f32_scalar, maxsim_f16_scalar, maxsim_i8_scalar, true},
                 {panel_dots_scalar, panel_argmax_scalar},
                 lut_max_scalar, centroid_max_scalar};
#if defined(GINGHAM_X86)
  Kernels avx2{{maxsim_f32_avx2, maxsim_f16_avx2, maxsim_i8_avx2, true},
               {panel_dots_avx2, panel_argmax_avx2},
               lut_max_avx2, centroid_max_avx2};
  // AVX-512 has its own MaxSim kernels; dense panels and the LUT kernel run at AVX2 width.
  Kernels avx512{{maxsim_f32_avx512, maxsim_f16_avx512, maxsim_i8_avx512, true},
                 {panel_dots_avx2, panel_argmax_avx2},
                 lut_max_avx2, centroid_max_avx2};
#endif
#if defined(__aarch64__)
  // The NEON kernels do not probe for non-finite similarities (not built or run on the x86
  // development machines): validated calls scan the tokens instead.
  Kernels neon{{maxsim_f32_neon, maxsim_f16_neon, maxsim_i8_neon, false},
               {panel_dots_scalar, panel_argmax_scalar},
               lut_max_scalar, centroid_max_scalar};
#endif
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const Kernels& scalar_kernels() { return tables().scalar; }

const Kernels& kernels() {
  const Tables& t = tables();
  switch (simd_level()) {
#if defined(GINGHAM_X86)
    case SimdLevel::AVX2: return t.avx2;
    case SimdLevel::AVX512: return t.avx512;
#endif
#if defined(__aarch64__)
    case SimdLevel::NEON: return t.neon;
#endif
    default: return t.scalar;
  }
}

}  // namespace gingham
