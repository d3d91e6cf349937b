#include "io/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "io/half.h"
#include "model/error.h"

// Tensor bytes are little-endian on disk and copied with memcpy.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "moekit io assumes a little-endian host");

namespace moekit::io {

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4},
    {DType::I64, "I64", 8}, {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
};

const DTypeInfo& info(DType dtype) {
  for (const auto& i : kDTypes)
    if (i.dtype == dtype) return i;
  fail("", "invalid DType value " + std::to_string(int(dtype)));
}

// Shape and byte count must agree before any element is touched (hand-built tensors included).
int64_t checked_size(const Tensor& t, const std::string& name) {
  const auto n = checked_numel(t.shape);
  if (!n) fail("", "tensor '" + name + "': invalid shape " + shape_string(t.shape));
  const uint64_t bytes = uint64_t(*n) * dtype_size(t.dtype);
  if (bytes != t.data.size())
    fail("", "tensor '" + name + "': " + dtype_name(t.dtype) + " " + shape_string(t.shape) + " needs " +
                 std::to_string(bytes) + " bytes, got " + std::to_string(t.data.size()));
  return *n;
}

}  // namespace

const char* dtype_name(DType dtype) { return info(dtype).name; }

std::optional<DType> dtype_from_name(const std::string& name) {
  for (const auto& i : kDTypes)
    if (name == i.name) return i.dtype;
  return std::nullopt;
}

std::string dtype_names() {
  std::string s;
  for (const auto& i : kDTypes) s += (s.empty() ? "" : ", ") + std::string(i.name);
  return s;
}

size_t dtype_size(DType dtype) { return info(dtype).size; }

bool is_float(DType dtype) { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16; }

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::optional<int64_t> checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}

Mat tensor_to_mat(const Tensor& t, const std::string& name) {
  if (!is_float(t.dtype))
    fail("", "tensor '" + name + "': expected a float tensor (F32, F16, BF16), got " + dtype_name(t.dtype));
  if (t.shape.size() != 1 && t.shape.size() != 2)
    fail("", "tensor '" + name + "': expected 1 or 2 dimensions, got shape " + shape_string(t.shape));
  const int64_t n = checked_size(t, name);
  const Eigen::Index rows = t.shape.size() == 1 ? 1 : Eigen::Index(t.shape[0]);
  const Eigen::Index cols = t.shape.back();
  Mat m(rows, cols);
  float* out = m.data();
  const uint8_t* p = t.data.data();
  if (t.dtype == DType::F32) {
    if (n) std::memcpy(out, p, size_t(n) * 4);
    return m;
  }
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    out[i] = t.dtype == DType::F16 ? half_to_float(h) : bf16_to_float(h);
  }
  return m;
}

Tensor mat_to_tensor(const Mat& m, DType dtype, bool as_vector) {
  if (!is_float(dtype))
    fail("", std::string("mat_to_tensor: expected a float dtype (F32, F16, BF16), got ") + dtype_name(dtype));
  if (as_vector && m.rows() != 1)
    fail("", "mat_to_tensor: a vector must be a [1, n] matrix, got " + shape_str(m.rows(), m.cols()));
  Tensor t;
  t.dtype = dtype;
  t.shape = as_vector ? std::vector<int64_t>{m.cols()} : std::vector<int64_t>{m.rows(), m.cols()};
  const size_t n = size_t(m.size());
  t.data.resize(n * dtype_size(dtype));
  const float* in = m.data();  // row-major, so this is the file order
  if (dtype == DType::F32) {
    if (n) std::memcpy(t.data.data(), in, n * 4);
    return t;
  }
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = dtype == DType::F16 ? float_to_half(in[i]) : float_to_bf16(in[i]);
    std::memcpy(t.data.data() + 2 * i, &h, 2);
  }
  return t;
}

Tensor int32_tensor(const std::vector<int32_t>& values, std::vector<int64_t> shape) {
  const auto n = checked_numel(shape);
  if (!n || uint64_t(*n) != values.size())
    fail("", "int32_tensor: shape " + shape_string(shape) + " does not hold " + std::to_string(values.size()) +
                 " values");
  Tensor t;
  t.dtype = DType::I32;
  t.shape = std::move(shape);
  t.data.resize(values.size() * 4);
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

std::vector<int32_t> tensor_to_int32(const Tensor& t, const std::string& name) {
  if (t.dtype != DType::I32 && t.dtype != DType::I64)
    fail("", "tensor '" + name + "': expected an integer tensor (I32 or I64), got " + dtype_name(t.dtype));
  const int64_t n = checked_size(t, name);
  std::vector<int32_t> out(static_cast<size_t>(n));
  if (t.dtype == DType::I32) {
    if (n) std::memcpy(out.data(), t.data.data(), size_t(n) * 4);
    return out;
  }
  for (int64_t i = 0; i < n; ++i) {
    int64_t v;
    std::memcpy(&v, t.data.data() + 8 * i, 8);
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
      fail("", "tensor '" + name + "': value " + std::to_string(v) + " at index " + std::to_string(i) +
                   " does not fit in int32");
    out[size_t(i)] = int32_t(v);
  }
  return out;
}

QuantizedMatrix tensor_to_quantized(const Tensor& q, const Tensor& scale, const std::string& name) {
  check(q.dtype == DType::I8 && q.shape.size() == 2, "",
        name + ": expected an I8 [rows, cols] tensor, got " + dtype_name(q.dtype) + " " + shape_string(q.shape));
  const auto numel = checked_numel(q.shape);
  check(numel && uint64_t(*numel) == q.data.size(), "", name + ": byte count does not match " + shape_string(q.shape));
  check(scale.dtype == DType::F32 && scale.shape.size() == 1 && scale.shape[0] >= 0 &&
            scale.data.size() == size_t(scale.shape[0]) * 4,
        "", name + ": expected an F32 [rows] scale, got " + dtype_name(scale.dtype) + " " + shape_string(scale.shape));
  check(scale.shape[0] == q.shape[0], "",
        "scale of " + name + " has " + std::to_string(scale.shape[0]) + " entries, expected " + std::to_string(q.shape[0]));
  QuantizedMatrix qm;
  qm.rows = Eigen::Index(q.shape[0]);
  qm.cols = Eigen::Index(q.shape[1]);
  qm.q.resize(q.data.size());
  if (!q.data.empty()) std::memcpy(qm.q.data(), q.data.data(), q.data.size());
  qm.scale.resize(size_t(qm.rows));
  if (qm.rows) std::memcpy(qm.scale.data(), scale.data.data(), scale.data.size());
  for (Eigen::Index r = 0; r < qm.rows; ++r) {
    const float s = qm.scale[size_t(r)];
    if (!(std::isfinite(s) && s >= 0))
      fail("", "scale of " + name + ": row " + std::to_string(r) + " has scale " + std::to_string(s) +
                   " (must be finite and >= 0)");
  }
  // if + fail rather than check(): the message is built only on failure, not once per value.
  for (int8_t v : qm.q)
    if (v == -128) fail("", name + ": int8 value -128 is outside the symmetric range [-127, 127]");
  return qm;
}

}  // namespace moekit::io
