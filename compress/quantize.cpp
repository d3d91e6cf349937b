#include "compress/quantize.h"

#include <cstring>

#include "io/half.h"

namespace moekit::compress {

Mat round_trip_fp16(const Mat& w) {
  return w.unaryExpr([](float v) { return io::half_to_float(io::float_to_half(v)); });
}

Mat round_trip_bf16(const Mat& w) {
  return w.unaryExpr([](float v) { return io::bf16_to_float(io::float_to_bf16(v)); });
}

io::Tensor to_tensor(const QuantizedMatrix& qm) {
  io::Tensor t;
  t.dtype = io::DType::I8;
  t.shape = {int64_t(qm.rows), int64_t(qm.cols)};
  t.data.resize(qm.q.size());
  if (!qm.q.empty()) std::memcpy(t.data.data(), qm.q.data(), qm.q.size());
  return t;
}

io::Tensor scale_tensor(const QuantizedMatrix& qm) {
  io::Tensor t;
  t.dtype = io::DType::F32;
  t.shape = {int64_t(qm.rows)};
  t.data.resize(qm.scale.size() * 4);
  if (!qm.scale.empty()) std::memcpy(t.data.data(), qm.scale.data(), t.data.size());
  return t;
}

QuantizedMatrix from_tensors(const io::Tensor& q, const io::Tensor& scale, const std::string& name) {
  return io::tensor_to_quantized(q, scale, name);
}

}  // namespace moekit::compress
