#include "model/vector_math.h"

#include "model/simd_math.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

namespace moekit {

namespace {

using simd::exp8;
using simd::exp16;
using simd::hmax;
using simd::hsum;
using simd::tail_mask;

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

using ArrayMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayMap = Eigen::Map<const Eigen::ArrayXf>;

std::atomic<int> g_max_isa{static_cast<int>(VectorIsa::avx512)};  // set_vector_math_max_isa

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

// Two passes (mean, then the squared deviations from it) keep large offsets harmless.
float layer_norm_row_portable(const float* x, const float* gamma, const float* beta, float eps, int64_t h, float* y,
                              float* xhat) {
  ConstArrayMap xx(x, h);
  const float mean = xx.sum() / static_cast<float>(h);
  const float rstd = 1.0f / std::sqrt((xx - mean).square().sum() / static_cast<float>(h) + eps);
  if (xhat) ArrayMap(xhat, h) = (xx - mean) * rstd;
  ArrayMap(y, h) = (xx - mean) * rstd * ConstArrayMap(gamma, h) + ConstArrayMap(beta, h);
  return rstd;
}

// ---- AVX2 + FMA ----


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
MOEKIT_AVX2 inline __m256 load(const float* p, int64_t len, float pad = 0.0f) {
  if (len == 8) return _mm256_loadu_ps(p);
  alignas(32) float buf[8] = {pad, pad, pad, pad, pad, pad, pad, pad};
  std::copy(p, p + len, buf);
  return _mm256_load_ps(buf);
}

MOEKIT_AVX2 inline void store(float* p, __m256 v, int64_t len) {
  if (len == 8) return _mm256_storeu_ps(p, v);
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  std::copy(buf, buf + len, p);
}


MOEKIT_AVX2 void softmax_avx2(float* x, int64_t n, float scale) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  __m256 vmax = _mm256_set1_ps(kNegInf);
  for (int64_t i = 0; i < n; i += 8) vmax = _mm256_max_ps(vmax, load(x + i, std::min<int64_t>(8, n - i), kNegInf));
  const __m256 vmx = _mm256_set1_ps(hmax(vmax)), vs = _mm256_set1_ps(scale);
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

// Two accumulators per sum (a row of 128 is 16 vectors: one chain would wait on each add).
MOEKIT_AVX2 float layer_norm_row_avx2(const float* x, const float* gamma, const float* beta, float eps, int64_t h,
                                      float* y, float* xhat) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= h; i += 16) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
  }
  for (; i < h; i += 8) s0 = _mm256_add_ps(s0, load(x + i, std::min<int64_t>(8, h - i)));
  const float mean = hsum(_mm256_add_ps(s0, s1)) / static_cast<float>(h);
  const __m256 vm = _mm256_set1_ps(mean);
  __m256 q0 = _mm256_setzero_ps(), q1 = _mm256_setzero_ps();
  for (i = 0; i + 16 <= h; i += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
    q0 = _mm256_fmadd_ps(d0, d0, q0);
    q1 = _mm256_fmadd_ps(d1, d1, q1);
  }
  for (; i < h; i += 8) {
    const int64_t len = std::min<int64_t>(8, h - i);
    const __m256 d = _mm256_sub_ps(load(x + i, len, mean), vm);  // padded lanes: deviation 0
    q0 = _mm256_fmadd_ps(d, d, q0);
  }
  const float rstd = 1.0f / std::sqrt(hsum(_mm256_add_ps(q0, q1)) / static_cast<float>(h) + eps);
  const __m256 vr = _mm256_set1_ps(rstd);
  for (i = 0; i < h; i += 8) {
    const int64_t len = std::min<int64_t>(8, h - i);
    const __m256 v = _mm256_mul_ps(_mm256_sub_ps(load(x + i, len), vm), vr);
    if (xhat) store(xhat + i, v, len);
    store(y + i, _mm256_fmadd_ps(v, load(gamma + i, len), load(beta + i, len)), len);
  }
  return rstd;
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


// ---- AVX-512 (F only): the AVX2 algorithms on 16 lanes, tails by masked loads and stores ----
// GCC 12's AVX-512 headers build constants from _mm512_undefined_*() and then warn about them
// (a known false positive, GCC bug 105593); nothing here reads an undefined lane.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

MOEKIT_AVX512 inline __m512 and_ps(__m512 a, __m512 b) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
MOEKIT_AVX512 inline __m512 andnot_ps(__m512 a, __m512 b) {  // ~a & b
  return _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
MOEKIT_AVX512 inline __m512 or_ps(__m512 a, __m512 b) {
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}


MOEKIT_AVX512 inline __m512 erf16(__m512 x) {
  const __m512 sign = and_ps(x, _mm512_set1_ps(-0.0f));
  const __m512 ax = andnot_ps(_mm512_set1_ps(-0.0f), x);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
  const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
  const __m512 y = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
  return or_ps(y, sign);
}


MOEKIT_AVX512 void softmax_avx512(float* x, int64_t n, float scale) {
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < n; i += 16) vmax = _mm512_mask_max_ps(vmax, tail_mask(n - i), vmax, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
  const __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax)), vs = _mm512_set1_ps(scale);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmx), vs));
    _mm512_mask_storeu_ps(x + i, m, e);
    sum = _mm512_mask_add_ps(sum, m, sum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
  }
}

MOEKIT_AVX512 float layer_norm_row_avx512(const float* x, const float* gamma, const float* beta, float eps, int64_t h,
                                        float* y, float* xhat) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= h; i += 32) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
  }
  for (; i < h; i += 16) s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(tail_mask(h - i), x + i));
  const float mean = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / static_cast<float>(h);
  const __m512 vm = _mm512_set1_ps(mean);
  __m512 q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
  for (i = 0; i + 32 <= h; i += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm), d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm);
    q0 = _mm512_fmadd_ps(d0, d0, q0);
    q1 = _mm512_fmadd_ps(d1, d1, q1);
  }
  for (; i < h; i += 16) {
    const __mmask16 m = tail_mask(h - i);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm);
    q0 = _mm512_fmadd_ps(d, d, q0);
  }
  const float rstd = 1.0f / std::sqrt(_mm512_reduce_add_ps(_mm512_add_ps(q0, q1)) / static_cast<float>(h) + eps);
  const __m512 vr = _mm512_set1_ps(rstd);
  for (i = 0; i < h; i += 16) {
    const __mmask16 m = tail_mask(h - i);
    const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vr);
    if (xhat) _mm512_mask_storeu_ps(xhat + i, m, v);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, gamma + i), _mm512_maskz_loadu_ps(m, beta + i)));
  }
  return rstd;
}

MOEKIT_AVX512 inline __m512 normal_cdf16(__m512 v) {
  return _mm512_fmadd_ps(erf16(_mm512_mul_ps(v, _mm512_set1_ps(kInvSqrt2))), _mm512_set1_ps(0.5f), _mm512_set1_ps(0.5f));
}

MOEKIT_AVX512 void gelu_values_avx512(const float* z, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, z + i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, normal_cdf16(v)));
  }
}

MOEKIT_AVX512 void gelu_derivatives_avx512(const float* z, const float* dy, float* dz, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, z + i);
    const __m512 pdf = _mm512_mul_ps(_mm512_set1_ps(kInvSqrt2Pi), exp16(_mm512_mul_ps(_mm512_set1_ps(-0.5f), _mm512_mul_ps(v, v))));
    _mm512_mask_storeu_ps(dz + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), _mm512_fmadd_ps(v, pdf, normal_cdf16(v))));
  }
}

#pragma GCC diagnostic pop

}  // namespace

const char* vector_isa_name(VectorIsa isa) {
  switch (isa) {
    case VectorIsa::avx512: return "avx512";
    case VectorIsa::avx2: return "avx2";
    default: return "portable";
  }
}

// ONEDNN_MAX_CPU_ISA caps these kernels as it caps oneDNN's, so one variable makes an AVX-512
// machine run as an AVX2 one (or older) throughout.
VectorIsa isa_cap_from_environment() {
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (!cap) return VectorIsa::avx512;
  std::string s(cap);
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (s.rfind("AVX512", 0) == 0 || s.rfind("AMX", 0) == 0 || s == "ALL") return VectorIsa::avx512;
  if (s.rfind("AVX2", 0) == 0) return VectorIsa::avx2;
  return VectorIsa::portable;  // SSE41, AVX
}

VectorIsa vector_math_best_isa() {
  static const VectorIsa best = [] {
    const VectorIsa cpu = __builtin_cpu_supports("avx512f") ? VectorIsa::avx512
                          : cpu_has_avx2_fma()               ? VectorIsa::avx2
                                                             : VectorIsa::portable;
    return std::min(cpu, isa_cap_from_environment());
  }();
  return best;
}

VectorIsa vector_math_isa() {
  const int cap = g_max_isa.load(std::memory_order_relaxed);
  return static_cast<VectorIsa>(std::min(cap, static_cast<int>(vector_math_best_isa())));
}

void set_vector_math_max_isa(VectorIsa isa) { g_max_isa.store(static_cast<int>(isa), std::memory_order_relaxed); }

void softmax_scaled(float* x, int64_t n, float scale) {
  if (n <= 0) return;
  switch (vector_math_isa()) {
    case VectorIsa::avx512: return softmax_avx512(x, n, scale);
    case VectorIsa::avx2: return softmax_avx2(x, n, scale);
    default: return softmax_portable(x, n, scale);
  }
}

float layer_norm_row(const float* x, const float* gamma, const float* beta, float eps, int64_t h, float* y,
                     float* xhat) {
  if (h <= 0) return 1.0f / std::sqrt(eps);
  switch (vector_math_isa()) {
    case VectorIsa::avx512: return layer_norm_row_avx512(x, gamma, beta, eps, h, y, xhat);
    case VectorIsa::avx2: return layer_norm_row_avx2(x, gamma, beta, eps, h, y, xhat);
    default: return layer_norm_row_portable(x, gamma, beta, eps, h, y, xhat);
  }
}

void gelu_values(const float* z, float* y, int64_t n) {
  switch (vector_math_isa()) {
    case VectorIsa::avx512: return gelu_values_avx512(z, y, n);
    case VectorIsa::avx2: return gelu_values_avx2(z, y, n);
    default: return gelu_values_portable(z, y, n);
  }
}

void gelu_derivatives(const float* z, const float* dy, float* dz, int64_t n) {
  switch (vector_math_isa()) {
    case VectorIsa::avx512: return gelu_derivatives_avx512(z, dy, dz, n);
    case VectorIsa::avx2: return gelu_derivatives_avx2(z, dy, dz, n);
    default: return gelu_derivatives_portable(z, dy, dz, n);
  }
}

}  // namespace moekit
