#include "model/vector_math.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

namespace moekit {

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

using ArrayMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayMap = Eigen::Map<const Eigen::ArrayXf>;

std::atomic<bool> g_avx2_enabled{true};

bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

// ---- portable: Eigen packets at the baseline ISA ----

void softmax_portable(float* x, int64_t n, float scale) {
  ArrayMap row(x, n);
  row = ((row - row.maxCoeff()) * scale).exp();
  row /= row.sum();
}

void gelu_values_portable(const float* z, float* y, int64_t n) {
  ConstArrayMap zz(z, n);
  ArrayMap(y, n) = 0.5f * zz * (1.0f + (zz * kInvSqrt2).erf());
}

void gelu_derivatives_portable(const float* z, const float* dy, float* dz, int64_t n) {
  ConstArrayMap zz(z, n);
  ArrayMap(dz, n) = ConstArrayMap(dy, n) * (0.5f * (1.0f + (zz * kInvSqrt2).erf()) + zz * kInvSqrt2Pi * (-0.5f * zz.square()).exp());
}

// ---- AVX2 + FMA ----
#define MOEKIT_AVX2 __attribute__((target("avx2,fma")))

// e^x: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact n ln2), e^r by its Taylor
// series to r^7 (truncation < 6e-9 relative), times 2^n built in the exponent bits. Below -87.3
// (where e^x leaves the normal floats) the result is 0; above 88.7 it saturates near FLT_MAX.
MOEKIT_AVX2 inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f), hi = _mm256_set1_ps(88.37626f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 = 0.693359375 - 2.12194440e-4
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // n in [-126, 127] here: 2^n = (n + 127) << 23 as float bits. (At the top clamp, n = 128 would
  // overflow, so n is capped at 127 and the polynomial carries the rest.)
  const __m256i ni = _mm256_min_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  const __m256 pow2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23));
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, pow2));
}

// erf(x), Abramowitz & Stegun 7.1.26: 1 - t (a1 + t (a2 + ...)) e^{-x^2}, t = 1 / (1 + p |x|),
// odd in x; absolute error < 1.5e-7.
MOEKIT_AVX2 inline __m256 erf8(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax, _mm256_set1_ps(1.0f)));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  p = _mm256_mul_ps(p, t);
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
  const __m256 y = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
  return _mm256_or_ps(y, sign);
}

// Loads and stores of a tail (len < 8) go through a zero-padded buffer, so every element sees the
// same arithmetic as a whole vector.
MOEKIT_AVX2 inline __m256 load(const float* p, int64_t len) {
  if (len == 8) return _mm256_loadu_ps(p);
  alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::copy(p, p + len, buf);
  return _mm256_load_ps(buf);
}

MOEKIT_AVX2 inline void store(float* p, __m256 v, int64_t len) {
  if (len == 8) return _mm256_storeu_ps(p, v);
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  std::copy(buf, buf + len, p);
}

MOEKIT_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

MOEKIT_AVX2 void softmax_avx2(float* x, int64_t n, float scale) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  const __m256 vmx = _mm256_set1_ps(mx), vs = _mm256_set1_ps(scale);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t len = std::min<int64_t>(8, n - i);
    store(x + i, exp8(_mm256_mul_ps(_mm256_sub_ps(load(x + i, len), vmx), vs)), len);
    sum = _mm256_add_ps(sum, load(x + i, len));  // a tail's padded lanes reload as 0
  }
  const __m256 inv = _mm256_set1_ps(1.0f / hsum(sum));
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t len = std::min<int64_t>(8, n - i);
    store(x + i, _mm256_mul_ps(load(x + i, len), inv), len);
  }
}

MOEKIT_AVX2 inline __m256 normal_cdf8(__m256 v) {
  return _mm256_fmadd_ps(erf8(_mm256_mul_ps(v, _mm256_set1_ps(kInvSqrt2))), _mm256_set1_ps(0.5f), _mm256_set1_ps(0.5f));
}

MOEKIT_AVX2 void gelu_values_avx2(const float* z, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t len = std::min<int64_t>(8, n - i);
    const __m256 v = load(z + i, len);
    store(y + i, _mm256_mul_ps(v, normal_cdf8(v)), len);
  }
}

MOEKIT_AVX2 void gelu_derivatives_avx2(const float* z, const float* dy, float* dz, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t len = std::min<int64_t>(8, n - i);
    const __m256 v = load(z + i, len);
    const __m256 pdf = _mm256_mul_ps(_mm256_set1_ps(kInvSqrt2Pi), exp8(_mm256_mul_ps(_mm256_set1_ps(-0.5f), _mm256_mul_ps(v, v))));
    store(dz + i, _mm256_mul_ps(load(dy + i, len), _mm256_fmadd_ps(v, pdf, normal_cdf8(v))), len);
  }
}

}  // namespace

bool vector_math_avx2() { return g_avx2_enabled.load(std::memory_order_relaxed) && cpu_has_avx2_fma(); }

void set_vector_math_avx2_enabled(bool enabled) { g_avx2_enabled.store(enabled, std::memory_order_relaxed); }

void softmax_scaled(float* x, int64_t n, float scale) {
  if (n <= 0) return;
  vector_math_avx2() ? softmax_avx2(x, n, scale) : softmax_portable(x, n, scale);
}

void gelu_values(const float* z, float* y, int64_t n) {
  vector_math_avx2() ? gelu_values_avx2(z, y, n) : gelu_values_portable(z, y, n);
}

void gelu_derivatives(const float* z, const float* dy, float* dz, int64_t n) {
  vector_math_avx2() ? gelu_derivatives_avx2(z, dy, dz, n) : gelu_derivatives_portable(z, dy, dz, n);
}

}  // namespace moekit
