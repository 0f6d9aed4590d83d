#include "gingham/simd_level.h"

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <string>

#if defined(GINGHAM_X86) && defined(_MSC_VER)
#include <intrin.h>
#elif defined(GINGHAM_X86)
#include <cpuid.h>
#endif

namespace gingham {
namespace {

#if defined(GINGHAM_X86) && defined(_MSC_VER)
// MSVC has neither <cpuid.h> nor GNU inline asm: the same queries through its intrinsics.
bool cpuid_count(unsigned int leaf, unsigned int sub, unsigned int* eax, unsigned int* ebx,
                 unsigned int* ecx, unsigned int* edx) {
  int regs[4];
  __cpuid(regs, 0);
  if (static_cast<unsigned int>(regs[0]) < leaf) return false;
  __cpuidex(regs, static_cast<int>(leaf), static_cast<int>(sub));
  *eax = regs[0], *ebx = regs[1], *ecx = regs[2], *edx = regs[3];
  return true;
}
unsigned long long read_xcr0() { return _xgetbv(0); }
#elif defined(GINGHAM_X86)
bool cpuid_count(unsigned int leaf, unsigned int sub, unsigned int* eax, unsigned int* ebx,
                 unsigned int* ecx, unsigned int* edx) {
  return __get_cpuid_count(leaf, sub, eax, ebx, ecx, edx) != 0;
}
// The OS must save the wide registers on context switch (XCR0), or using them corrupts state.
unsigned long long read_xcr0() {
  unsigned int eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

#if defined(GINGHAM_X86)
SimdLevel detect_x86() {
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!cpuid_count(1, 0, &eax, &ebx, &ecx, &edx)) return SimdLevel::Scalar;
  const bool has_osxsave = ecx & (1u << 27);
  const bool has_fma = ecx & (1u << 12);
  const bool has_f16c = ecx & (1u << 29);
  const bool has_avx = ecx & (1u << 28);
  if (!(has_osxsave && has_avx && has_fma && has_f16c)) return SimdLevel::Scalar;
  const unsigned long long xcr0 = read_xcr0();
  const bool ymm_enabled = (xcr0 & 0x6) == 0x6;
  const bool zmm_enabled = (xcr0 & 0xe6) == 0xe6;
  if (!ymm_enabled) return SimdLevel::Scalar;
  if (!cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return SimdLevel::Scalar;
  const bool has_avx2 = ebx & (1u << 5);
  const bool has_avx512f = ebx & (1u << 16);
  const bool has_avx512dq = ebx & (1u << 17);
  const bool has_avx512bw = ebx & (1u << 30);
  const bool has_avx512vl = ebx & (1u << 31);
  if (!has_avx2) return SimdLevel::Scalar;
  if (zmm_enabled && has_avx512f && has_avx512dq && has_avx512bw && has_avx512vl) {
    return SimdLevel::AVX512;
  }
  return SimdLevel::AVX2;
}
#endif

SimdLevel initial_level() {
  SimdLevel level = detect_simd_level();
  const char* forced = std::getenv("GINGHAM_SIMD_LEVEL");
  SimdLevel wanted;
  if (forced != nullptr && parse_simd_level(forced, &wanted) && simd_level_supported(wanted)) {
    level = wanted;
  }
  return level;
}

std::atomic<int>& current_level() {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}

}  // namespace

SimdLevel detect_simd_level() {
#if defined(GINGHAM_X86)
  static const SimdLevel detected = detect_x86();
  return detected;
#elif defined(__aarch64__)
  return SimdLevel::NEON;
#else
  return SimdLevel::Scalar;
#endif
}

bool simd_level_supported(SimdLevel level) {
  const SimdLevel best = detect_simd_level();
  switch (level) {
    case SimdLevel::Scalar: return true;
    case SimdLevel::AVX2: return best == SimdLevel::AVX2 || best == SimdLevel::AVX512;
    case SimdLevel::AVX512: return best == SimdLevel::AVX512;
    case SimdLevel::NEON: return best == SimdLevel::NEON;
  }
  return false;
}

SimdLevel simd_level() { return static_cast<SimdLevel>(current_level().load()); }

bool set_simd_level(SimdLevel level) {
  if (!simd_level_supported(level)) return false;
  current_level().store(static_cast<int>(level));
  return true;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::AVX2: return "avx2";
    case SimdLevel::AVX512: return "avx512";
    case SimdLevel::NEON: return "neon";
  }
  return "unknown";
}

bool parse_simd_level(const char* text, SimdLevel* level) {
  std::string name(text);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "scalar") *level = SimdLevel::Scalar;
  else if (name == "avx2") *level = SimdLevel::AVX2;
  else if (name == "avx512") *level = SimdLevel::AVX512;
  else if (name == "neon") *level = SimdLevel::NEON;
  else return false;
  return true;
}

}  // namespace gingham
