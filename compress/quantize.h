// Post-training weight compression for export (DESIGN 5): int8 per-output-row symmetric
// quantisation, fp16 rounding, and an int8 x int8 -> int32 linear layer for inference.
//
// int8 scheme, row r of a [rows, cols] weight (HF orientation [out, in], so a row is one output):
//   scale_r = amax_r / 127, q = clamp(round(w / scale_r), -127, 127), w ~= scale_r * q.
// -128 is never used, so the range is symmetric and negation is exact. Per entry the error is at
// most scale_r / 2 plus float rounding. A row whose scale is 0 (all zeros, or amax below
// 127 * 2^-149 so the scale underflows) stores q = 0: no division by zero.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "model/tensor.h"

namespace moekit::compress {

struct QuantizedMatrix {
  std::vector<int8_t> q;     // rows * cols, row-major
  std::vector<float> scale;  // one per row
  Eigen::Index rows = 0, cols = 0;
};

// Throws Error naming `name` when w has a non-finite entry.
QuantizedMatrix quantize_int8_rows(const Mat& w, const std::string& name = "");
Mat dequantize(const QuantizedMatrix& qm);

// Each entry rounded to fp16 (or bf16) and back, as storing it would do (io/half.h rounding).
Mat round_trip_fp16(const Mat& w);
Mat round_trip_bf16(const Mat& w);

// The compact checkpoint's representation: I8 [rows, cols] and its F32 [rows] scale.
io::Tensor to_tensor(const QuantizedMatrix& qm);
io::Tensor scale_tensor(const QuantizedMatrix& qm);
// Inverse of the two above; validates dtypes, shapes and scales (errors name `name`).
QuantizedMatrix from_tensors(const io::Tensor& q, const io::Tensor& scale, const std::string& name);

// y = x * W^T + bias with W int8: each row of x is quantised like a weight row (dynamic, symmetric),
// products accumulate exactly in int32, then y(i, j) = sx_i * sw_j * acc + bias_j. bias may be
// empty. Uses AVX-512 VNNI (vpdpbusd, activations offset by 128 to u8) when compiled for it.
// Per entry |y - x W^T - b| <= sum_k |x_k| sw/2 + |w^_k| sx/2 (+ float rounding).
void int8_linear(const Mat& x, const QuantizedMatrix& w, const RowVec& bias, Mat& y);
// Longest input row int8_linear accepts: 255 * 127 * cols must fit in int32.
constexpr Eigen::Index kMaxInt8LinearCols = 66'000;

}  // namespace moekit::compress
