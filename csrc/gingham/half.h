// IEEE binary16 <-> float32 conversions without any ISA extension: the reference for the fp16
// token kernels, their tails, the codec's per-token scales and the finiteness checks.
#pragma once

#include <cstdint>

namespace gingham {

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);  // round to nearest even

}  // namespace gingham
