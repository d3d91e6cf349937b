// Element-wise kernels that dominate outside the matrix products (softmax, LayerNorm rows, GELU),
// with AVX-512 and AVX2 + FMA versions chosen at run time and a portable one (Eigen's packet maths
// at the build's baseline ISA) everywhere else. The vector code uses compiler target attributes,
// not -m flags, so one binary runs on any x86-64 CPU.
//
// The AVX-512 version runs the AVX2 one's operations on 16 lanes: its GELU values equal the AVX2
// ones bit for bit, its softmax sums in another order. The portable and vector versions agree
// to float rounding, not bit for bit: the vector exp is a degree-7 Taylor
// polynomial after an exact ln2 split (truncation < 6e-9 relative) and its erf is Abramowitz &
// Stegun 7.1.26 (published absolute error < 1.5e-7); tests/model/test_vector_math.cpp holds both
// versions to 1e-6 relative (softmax) and 4e-7 absolute (GELU) against double precision, and the
// LayerNorm rows (whose versions sum in different orders) to 2e-6 relative.
#pragma once
#include <cstdint>

namespace moekit {

enum class VectorIsa { portable = 0, avx2 = 1, avx512 = 2 };
const char* vector_isa_name(VectorIsa isa);
// The best version this CPU runs (AVX-512 F; AVX2 + FMA; portable), capped by
// ONEDNN_MAX_CPU_ISA when set (AVX2 -> the AVX2 version; SSE41 or AVX -> portable).
VectorIsa vector_math_best_isa();
// The version in use: the best one, capped by set_vector_math_max_isa (default: no cap). Tests
// compare the versions on one machine.
VectorIsa vector_math_isa();
void set_vector_math_max_isa(VectorIsa isa);

// x[0..n) <- softmax(x * scale), the maximum subtracted first.
void softmax_scaled(float* x, int64_t n, float scale);
// One row of a LayerNorm: y = (x - mean) * rstd * gamma + beta over x[0..h), two-pass mean and
// variance in float; returns rstd = 1 / sqrt(var + eps) and writes (x - mean) * rstd to xhat unless
// it is null. y may be x (in place).
float layer_norm_row(const float* x, const float* gamma, const float* beta, float eps, int64_t h, float* y,
                     float* xhat);
// y = z * Phi(z) (exact-erf GELU, HF "gelu").
void gelu_values(const float* z, float* y, int64_t n);
// dz = dy * (Phi(z) + z * phi(z)).
void gelu_derivatives(const float* z, const float* dy, float* dz, int64_t n);

}  // namespace moekit
