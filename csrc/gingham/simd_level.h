// Runtime ISA selection. The level is detected once (cpuid + xgetbv on x86_64, always NEON on
// aarch64); the environment variable GINGHAM_SIMD_LEVEL may lower it, never raise it.
#pragma once

namespace gingham {

enum class SimdLevel { Scalar = 0, AVX2 = 1, AVX512 = 2, NEON = 3 };

// Best level this CPU and this build support.
SimdLevel detect_simd_level();

// Level in use: detected, lowered by GINGHAM_SIMD_LEVEL or by set_simd_level.
SimdLevel simd_level();

// Force a level (tests, comparisons). Returns false, changing nothing, if the CPU or the
// build cannot run it.
bool set_simd_level(SimdLevel level);

bool simd_level_supported(SimdLevel level);

const char* simd_level_name(SimdLevel level);

// Parses "scalar", "avx2", "avx512", "neon" (case-insensitive). Returns false if unknown.
bool parse_simd_level(const char* text, SimdLevel* level);

}  // namespace gingham
