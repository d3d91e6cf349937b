// File-side tensors: a dtype, a shape and raw little-endian bytes (what safetensors and the
// compact checkpoint store), plus the conversions to and from the model's float Mat and int8
// QuantizedMatrix.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/int8_matmul.h"
#include "model/tensor.h"

namespace moekit::io {

enum class DType { F32, F16, BF16, I32, I64, I8, U8 };

// Names as safetensors spells them ("F32", "BF16", ...).
const char* dtype_name(DType dtype);
std::optional<DType> dtype_from_name(const std::string& name);
// "F32, F16, BF16, I32, I64, I8, U8", for error messages.
std::string dtype_names();
size_t dtype_size(DType dtype);
bool is_float(DType dtype);

struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // little-endian, row-major, size = numel * dtype_size
};

// "[2, 3]"
std::string shape_string(const std::vector<int64_t>& shape);
// Element count; nullopt when a dimension is negative or the product overflows int64.
std::optional<int64_t> checked_numel(const std::vector<int64_t>& shape);

// F32/F16/BF16 tensor -> float Mat: 1-D [n] -> [1, n], 2-D [r, c] -> [r, c]. Errors name the tensor.
Mat tensor_to_mat(const Tensor& t, const std::string& name);
// Mat -> F32/F16/BF16 tensor; as_vector stores a [1, n] Mat with shape [n] (biases, LayerNorm).
Tensor mat_to_tensor(const Mat& m, DType dtype, bool as_vector);

Tensor int32_tensor(const std::vector<int32_t>& values, std::vector<int64_t> shape);
// Accepts I32, or I64 whose values all fit in int32 (HF stores index buffers as I64).
std::vector<int32_t> tensor_to_int32(const Tensor& t, const std::string& name);

// I8 [rows, cols] with its F32 [rows] per-row scale (the compact checkpoint's int8 pair) ->
// QuantizedMatrix. Checks dtypes, shapes, byte counts, scales (finite, >= 0) and values (no -128,
// outside the symmetric range); errors name the tensor.
QuantizedMatrix tensor_to_quantized(const Tensor& q, const Tensor& scale, const std::string& name);

}  // namespace moekit::io
