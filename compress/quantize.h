// Post-training weight compression for export (DESIGN 5): int8 per-output-row symmetric
// quantisation, fp16 rounding, and the conversion of int8 matrices to the compact checkpoint's
// tensors.
//
// The int8 scheme itself (quantize_int8_rows, the error bound) and the int8 x int8 -> int32 linear
// layer live in the model library (model/int8_matmul.h) so Linear can run int8 weights at
// inference; they are re-exported here, where export and its tests have always found them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "model/int8_matmul.h"
#include "model/tensor.h"

namespace moekit::compress {

using moekit::dequantize;
using moekit::int8_linear;
using moekit::kMaxInt8LinearCols;
using moekit::QuantizedMatrix;
using moekit::quantize_int8_rows;

// Each entry rounded to fp16 (or bf16) and back, as storing it would do (io/half.h rounding).
Mat round_trip_fp16(const Mat& w);
Mat round_trip_bf16(const Mat& w);

// The compact checkpoint's representation: I8 [rows, cols] and its F32 [rows] scale.
io::Tensor to_tensor(const QuantizedMatrix& qm);
io::Tensor scale_tensor(const QuantizedMatrix& qm);
// Inverse of the two above (io::tensor_to_quantized); validates dtypes, shapes and scales (errors
// name `name`).
QuantizedMatrix from_tensors(const io::Tensor& q, const io::Tensor& scale, const std::string& name);

}  // namespace moekit::compress
