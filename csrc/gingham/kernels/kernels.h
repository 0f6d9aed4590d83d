// The one kernel table: for each SIMD level, the MaxSim kernels (maxsim_kernels.h), the dense
// panel kernels (dense_kernels.h) and the residual look-up-table kernel (plaid_lut_kernels.h).
// The tables are filled once (kernels/dispatch.cpp, the only file naming the per-ISA
// functions); kernels() returns the one of the level in use (gingham::simd_level()).
#pragma once

#include "gingham/kernels/dense_kernels.h"
#include "gingham/kernels/maxsim_kernels.h"
#include "gingham/kernels/plaid_lut_kernels.h"

namespace gingham {

struct Kernels {
  MaxSimKernels maxsim;
  DenseKernels dense;
  LutMaxFn lut_max;
  CentroidMaxFn centroid_max;
};

const Kernels& kernels();         // for the SIMD level in use
const Kernels& scalar_kernels();  // the scalar reference, whatever the level

}  // namespace gingham
