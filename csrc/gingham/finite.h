// Finiteness checks for input validation (NaN / inf), run before any kernel.
#pragma once

#include <cstdint>

namespace gingham {

// Index of the first non-finite value among n, or -1 when all are finite.
int64_t first_nonfinite_f32(const float* values, int64_t n);
// Same for IEEE binary16 bit patterns (exponent field all ones).
int64_t first_nonfinite_f16(const uint16_t* values, int64_t n);

}  // namespace gingham
