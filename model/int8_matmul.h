// int8 weights for inference (DESIGN 5): the per-row quantisation scheme and the int8 linear
// layer that runs an int8 export without dequantising it, on oneDNN's int8 matmul (model/matmul.h).
// In the model library so Linear can use it; compress/quantize (export) and io (loading) build on it.
//
// Weights, row r of a [rows, cols] matrix in HF orientation [out, in] (a row is one output):
//   scale_r = amax_r / 127, q = clamp(rint(w / scale_r), -127, 127), w ~= scale_r * q.
// -128 is never used, so the range is symmetric and negation is exact. Per entry the error is at
// most scale_r / 2 plus float rounding. A row whose scale is 0 (all zeros, or amax below
// 127 * 2^-149 so the scale underflows) stores q = 0: no division by zero. rint: ties to even.
//
// Activations, quantised on the fly per token row i (dynamic, asymmetric, L = int8_max_activation(),
// 255 on VNNI/AMX CPUs and 127 elsewhere):
//   lo = min(0, min_k x_k), hi = max(0, max_k x_k), sx = (hi - lo) / L, zp = rint(-lo / sx),
//   u = clamp(rint(x / sx) + zp, 0, L) (u8), x ~= sx * (u - zp).
// Including 0 in [lo, hi] makes zero exact; asymmetric codes suit GELU outputs (>= -0.17).
// Then y(i, j) = sx_i * sw_j * (acc(i, j) - zp_i * rowsum_j) + b_j in float, from the exact integer
// acc = u * q^T from oneDNN (u8 x s8 -> s32) and rowsum_j = sum_k q(j, k).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/matmul.h"
#include "model/tensor.h"

namespace moekit {

struct QuantizedMatrix {
  std::vector<int8_t> q;     // rows * cols, row-major
  std::vector<float> scale;  // one per row
  Eigen::Index rows = 0, cols = 0;
};

// Throws Error naming `name` when w has a non-finite entry.
QuantizedMatrix quantize_int8_rows(const Mat& w, const std::string& name = "");
Mat dequantize(const QuantizedMatrix& qm);

// An int8 weight [out, in] ready for the kernel, built once at load time.
struct PackedInt8Matrix {
  Eigen::Index rows = 0, cols = 0;        // out, in
  std::vector<float> scale;               // [rows]
  std::vector<int32_t> row_sum;           // [rows] sum_k q(r, k): removes the activations' zero point
  std::shared_ptr<const PackedWeight> weight;  // q in oneDNN's layout
};
PackedInt8Matrix pack_int8(const QuantizedMatrix& qm);

// The rows of several int8 weights of one input width stacked into one weight (attention's Q, K
// and V: one product instead of three). Per-row scales make stacking exact.
PackedInt8Matrix stack_int8_rows(const std::vector<const PackedInt8Matrix*>& parts);

// Activation rows quantised as above: codes [rows, cols] row-major, per row scale and zero point.
// A row with a non-finite entry gets a NaN scale (its outputs are NaN, as a float product's are).
struct QuantizedActivations {
  std::vector<uint8_t> u;
  std::vector<float> scale;
  std::vector<int32_t> zero;
  Eigen::Index rows = 0, cols = 0;
};
QuantizedActivations quantize_activations(MatRef x, int max_code = int8_max_activation());

// One row of quantize_activations (codes u[0, cols), its scale and zero point); false for a row
// with a non-finite entry (then scale is NaN). For kernels that quantise rows where they are.
bool quantize_activation_row(const float* x, Eigen::Index cols, int max_code, uint8_t* u, float& scale, int32_t& zero);
// One output row of int8_linear from its exact sums acc[0, n): (acc - zero * row_sum) * (scale *
// w_scale) + bias (bias may be null).
void dequantize_sums(const int32_t* acc, const int32_t* row_sum, const float* w_scale, const float* bias, Eigen::Index n,
                     int32_t zero, float scale, float* y);

// Longest input row the kernel accepts: 255 * 127 * cols must fit in int32.
constexpr Eigen::Index kMaxInt8LinearCols = 66'000;

// y = x * W^T + bias with W int8 and x quantised as above. bias: [1, out] or empty. Per entry
// |y - x W^T - b| <= sum_k |x_k| sw/2 + |w^_k| sx (+ float rounding). oneDNN's integer sums do not
// depend on the thread count, and neither does the epilogue. Throws on a shape mismatch.
void int8_linear(MatRef x, const PackedInt8Matrix& w, MatRef bias, Mat& y);
// The same with x already quantised (quantize_activations at the default codes), so that several
// weights reading one input (attention's Q, K and V) quantise it once.
void int8_linear(const QuantizedActivations& a, const PackedInt8Matrix& w, MatRef bias, Mat& y);
// An FFN's hidden layer on int8 weights: quantize_activations(act(int8_linear(a, w, bias))), the
// same arithmetic per element, one row at a time, so the float hidden layer never reaches memory
// (the next int8 product only reads its codes).
QuantizedActivations int8_linear_activated(const QuantizedActivations& a, const PackedInt8Matrix& w, MatRef bias,
                                           Activation act);
// The same with an unpacked weight (packed on every call: for tests and one-off products).
void int8_linear(MatRef x, const QuantizedMatrix& w, const RowVec& bias, Mat& y);

// The exact integer product acc(i, j) = sum_k a.u(i, k) * w.q(j, k) that int8_linear scales, for
// tests of the kernel against a plain loop.
using Int32Mat = Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
Int32Mat int8_matmul(const QuantizedActivations& a, const PackedInt8Matrix& w);

}  // namespace moekit
