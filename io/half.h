// IEEE fp16 and bfloat16 <-> fp32 by bit manipulation, round to nearest even, no hardware needed.
// Header-only so tests and quantization code can use the exact same rounding.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace moekit::io {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));  // inf, nan keeps payload
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in float.
    const float v = std::ldexp(float(mant), -24);
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112) << 23) | (mant << 13));  // rebias 15 -> 127
}

inline uint16_t float_to_half(float f) {
  const uint32_t x = float_bits(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) {  // inf or nan; a nan must stay a nan, so force a mantissa bit
    if (a == 0x7f800000u) return sign | 0x7c00u;
    return uint16_t(sign | 0x7c00u | 0x200u | ((a >> 13) & 0x3ffu));
  }
  if (a < 0x38800000u) {  // below 2^-14: half subnormal (or zero), unit 2^-24
    const uint32_t e = a >> 23;
    if (e < 102) return sign;  // < 2^-25: rounds to zero (ties cannot occur, mant < 2^24)
    const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1))) ++h;  // may carry into the smallest normal
    return uint16_t(sign | h);
  }
  // Normal: rebias and round the 13 dropped bits; a carry may roll into inf, which is correct.
  uint32_t h = (a - 0x38000000u) >> 13;
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  if (h >= 0x7c00u) return sign | 0x7c00u;
  return uint16_t(sign | h);
}

inline float bf16_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }

inline uint16_t float_to_bf16(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);  // quiet nan
  // Round to nearest even on the low 16 bits; overflow carries into inf as it should.
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace moekit::io
