// Element-wise kernels that dominate outside the matrix products (softmax, GELU), with an AVX2 +
// FMA version chosen at run time and a portable one (Eigen's packet maths at the build's baseline
// ISA) everywhere else. The AVX2 code uses compiler target attributes, not -m flags, so one binary
// runs on any x86-64 CPU.
//
// The two versions agree to float rounding, not bit for bit: the AVX2 exp is a degree-7 Taylor
// polynomial after an exact ln2 split (truncation < 6e-9 relative) and its erf is Abramowitz &
// Stegun 7.1.26 (published absolute error < 1.5e-7); tests/model/test_vector_math.cpp holds both
// versions to 1e-6 relative (softmax) and 4e-7 absolute (GELU) against double precision.
#pragma once
#include <cstdint>

namespace moekit {

// True when this CPU runs the AVX2 kernels and they are enabled.
bool vector_math_avx2();
// Tests compare the two versions on one machine; the default is enabled.
void set_vector_math_avx2_enabled(bool enabled);

// x[0..n) <- softmax(x * scale), the maximum subtracted first.
void softmax_scaled(float* x, int64_t n, float scale);
// y = z * Phi(z) (exact-erf GELU, HF "gelu").
void gelu_values(const float* z, float* y, int64_t n);
// dz = dy * (Phi(z) + z * phi(z)).
void gelu_derivatives(const float* z, const float* dy, float* dz, int64_t n);

}  // namespace moekit
