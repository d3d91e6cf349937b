// int8 weights for inference (DESIGN 5): the per-row quantisation scheme and the int8 x int8 ->
// int32 linear layer that runs an int8 export without dequantising it. In the model library so
// Linear can use it; compress/quantize (export) and io (loading) build on it.
//
// int8 scheme, row r of a [rows, cols] matrix (a weight in HF orientation [out, in], so a row is
// one output; or one token's activations):
//   scale_r = amax_r / 127, q = clamp(rint(w / scale_r), -127, 127), w ~= scale_r * q.
// -128 is never used, so the range is symmetric and negation is exact. Per entry the error is at
// most scale_r / 2 plus float rounding. A row whose scale is 0 (all zeros, or amax below
// 127 * 2^-149 so the scale underflows) stores q = 0: no division by zero. rint (ties to even in
// the default rounding mode, which moekit never changes) rather than round: it compiles to one
// vector instruction, and the kernel quantises activations with this same step, so its operands
// are bit for bit what quantize_int8_rows gives.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

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

// An int8 weight [out, in] laid out for the kernels, built once at load time: for each panel of
// kInt8Panel output rows and each group of 4 inputs, 4 bytes per output row, so one 64-byte load
// feeds vpdpbusd 16 output rows. Rows and inputs are zero-padded to whole panels and groups.
constexpr Eigen::Index kInt8Panel = 64;
struct PackedInt8Matrix {
  Eigen::Index rows = 0, cols = 0;  // out, in
  std::vector<float> scale;         // [rows]
  std::vector<int32_t> row_sum;     // [rows] sum_k q(r, k): undoes the kernel's +128 offset of x
  std::vector<int8_t> packed;       // [ceil(rows / 64)][ceil(cols / 4)][64][4]
};
PackedInt8Matrix pack_int8(const QuantizedMatrix& qm);

// Which inner kernel runs. Both compute the same int32 sums exactly, so they agree bit for bit;
// `automatic` picks AVX-512 VNNI when this CPU has it (checked at run time, so one binary runs
// everywhere) and the portable C++ kernel otherwise.
enum class Int8Kernel { automatic, portable, vnni };
bool int8_vnni_supported();

// Longest input row the kernels accept: 255 * 127 * cols must fit in int32.
constexpr Eigen::Index kMaxInt8LinearCols = 66'000;

// y = x * W^T + bias with W int8: each row of x is quantised like a weight row (dynamic,
// symmetric; a row with a non-finite entry gives NaN outputs), products accumulate exactly in
// int32, then y(i, j) = float(sx_i * sw_j * acc(i, j)) + bias_j (scales multiplied in double).
// bias: [1, out] or empty. Per entry |y - x W^T - b| <= sum_k |x_k| sw/2 + |w^_k| sx/2
// (+ float rounding). OpenMP over blocks of rows; every output is written by one thread from
// integer sums, so the result does not depend on the thread count. Throws on a shape mismatch
// (so call it outside OpenMP regions unless the shapes are known to fit) and when
// Int8Kernel::vnni is asked for on a CPU without it.
void int8_linear(MatRef x, const PackedInt8Matrix& w, MatRef bias, Mat& y, Int8Kernel kernel = Int8Kernel::automatic);
// The same with an unpacked weight (packed on every call: for tests and one-off products).
void int8_linear(MatRef x, const QuantizedMatrix& w, const RowVec& bias, Mat& y);

// The exact integer product acc(i, j) = sum_k x.q(i, k) * w.q(j, k) that int8_linear scales, for
// tests of the kernels against each other and against a plain loop.
using Int32Mat = Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
Int32Mat int8_matmul(const QuantizedMatrix& x, const PackedInt8Matrix& w, Int8Kernel kernel = Int8Kernel::automatic);

}  // namespace moekit
