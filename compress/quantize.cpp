#include "compress/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "io/half.h"
#include "model/error.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>
#define MOEKIT_VNNI 1
#endif

namespace moekit::compress {

namespace {

std::string label(const std::string& name) { return name.empty() ? "matrix" : name; }

#ifdef MOEKIT_VNNI
// out[a][b] = dot(x[a], w[b]) for BX u8 rows and BW int8 rows, 64 bytes per vpdpbusd step:
// 4 x 4 blocks keep 16 accumulators in registers and load 8 vectors per 16 multiplies.
template <int BX, int BW>
void dot_block(const uint8_t* const* x, const int8_t* const* w, Eigen::Index n, int32_t (*out)[BW]) {
  __m512i acc[BX][BW], wv[BW];
  for (int a = 0; a < BX; ++a)
    for (int b = 0; b < BW; ++b) acc[a][b] = _mm512_setzero_si512();
  for (Eigen::Index k = 0; k < n; k += 64) {
    const __mmask64 m = n - k >= 64 ? ~0ULL : ~0ULL >> (64 - (n - k));  // tail bytes load as zero
    for (int b = 0; b < BW; ++b) wv[b] = _mm512_maskz_loadu_epi8(m, w[b] + k);
    for (int a = 0; a < BX; ++a) {
      const __m512i xv = _mm512_maskz_loadu_epi8(m, x[a] + k);
      for (int b = 0; b < BW; ++b) acc[a][b] = _mm512_dpbusd_epi32(acc[a][b], xv, wv[b]);
    }
  }
  for (int a = 0; a < BX; ++a)
    for (int b = 0; b < BW; ++b) out[a][b] = _mm512_reduce_add_epi32(acc[a][b]);
}
#endif

// acc(i, j) = sum_k qx(i, k) * qw(j, k), exact in int32 (cols <= kMaxInt8LinearCols).
void int8_gemm(const QuantizedMatrix& qx, const QuantizedMatrix& qw, Eigen::Matrix<int32_t, -1, -1, Eigen::RowMajor>& acc) {
  const Eigen::Index n = qx.rows, out = qw.rows, in = qw.cols;
  acc.resize(n, out);
#ifdef MOEKIT_VNNI
  // vpdpbusd multiplies u8 by s8: feed x + 128 and subtract 128 * sum_k w(j, k) afterwards; the
  // sums come from the same kernel with a row of ones.
  std::vector<uint8_t> ux(qx.q.size() + size_t(in));
  for (size_t i = 0; i < qx.q.size(); ++i) ux[i] = uint8_t(int(qx.q[i]) + 128);
  std::fill(ux.begin() + std::ptrdiff_t(qx.q.size()), ux.end(), uint8_t(1));
  constexpr Eigen::Index kB = 4;  // 4 weight rows (in L1) against every block of 4 activation rows
#pragma omp parallel for schedule(static)
  for (Eigen::Index j0 = 0; j0 < out; j0 += kB) {
    const Eigen::Index nj = std::min(kB, out - j0);
    const int8_t* w[kB];  // a short block repeats its last row; the extra results are dropped
    for (Eigen::Index b = 0; b < kB; ++b) w[b] = qw.q.data() + (j0 + std::min(b, nj - 1)) * in;
    const uint8_t* ones = ux.data() + n * in;
    int32_t wsum[1][kB], dots[kB][kB];
    dot_block<1, kB>(&ones, w, in, wsum);
    for (Eigen::Index i0 = 0; i0 < n; i0 += kB) {
      const Eigen::Index ni = std::min(kB, n - i0);
      const uint8_t* x[kB];
      for (Eigen::Index a = 0; a < kB; ++a) x[a] = ux.data() + (i0 + std::min(a, ni - 1)) * in;
      dot_block<kB, kB>(x, w, in, dots);
      for (Eigen::Index a = 0; a < ni; ++a)
        for (Eigen::Index b = 0; b < nj; ++b) acc(i0 + a, j0 + b) = dots[a][b] - 128 * wsum[0][b];
    }
  }
#else
#pragma omp parallel for schedule(static)
  for (Eigen::Index j = 0; j < out; ++j)
    for (Eigen::Index i = 0; i < n; ++i) {
      int32_t s = 0;
      for (Eigen::Index k = 0; k < in; ++k) s += int32_t(qx.q[size_t(i * in + k)]) * qw.q[size_t(j * in + k)];
      acc(i, j) = s;
    }
#endif
}

}  // namespace

QuantizedMatrix quantize_int8_rows(const Mat& w, const std::string& name) {
  QuantizedMatrix qm;
  qm.rows = w.rows();
  qm.cols = w.cols();
  qm.q.assign(size_t(w.size()), 0);
  qm.scale.assign(size_t(w.rows()), 0.0f);
  for (Eigen::Index r = 0; r < w.rows(); ++r) {
    float amax = 0;
    for (Eigen::Index c = 0; c < w.cols(); ++c) {
      const float v = w(r, c);
      if (!std::isfinite(v))
        fail("", label(name) + ": cannot quantise non-finite value " + std::to_string(v) + " at row " +
                     std::to_string(r) + ", column " + std::to_string(c));
      amax = std::max(amax, std::abs(v));
    }
    const float s = amax / 127.0f;
    qm.scale[size_t(r)] = s;
    if (s == 0) continue;  // zero row (or amax so small the scale underflows): q stays 0
    int8_t* q = qm.q.data() + r * w.cols();
    // Divide rather than multiply by 1/s: one rounding, which the error bound counts.
    for (Eigen::Index c = 0; c < w.cols(); ++c) q[c] = int8_t(std::clamp(std::round(w(r, c) / s), -127.0f, 127.0f));
  }
  return qm;
}

Mat dequantize(const QuantizedMatrix& qm) {
  Mat m(qm.rows, qm.cols);
  for (Eigen::Index r = 0; r < qm.rows; ++r)
    for (Eigen::Index c = 0; c < qm.cols; ++c) m(r, c) = qm.scale[size_t(r)] * float(qm.q[size_t(r * qm.cols + c)]);
  return m;
}

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
  check(q.dtype == io::DType::I8 && q.shape.size() == 2, "",
        name + ": expected an I8 [rows, cols] tensor, got " + io::dtype_name(q.dtype) + " " + io::shape_string(q.shape));
  const auto numel = io::checked_numel(q.shape);
  check(numel && uint64_t(*numel) == q.data.size(), "", name + ": byte count does not match " + io::shape_string(q.shape));
  check(scale.dtype == io::DType::F32 && scale.shape.size() == 1 && scale.data.size() == size_t(scale.shape[0]) * 4,
        "", name + ": expected an F32 [rows] scale, got " + io::dtype_name(scale.dtype) + " " + io::shape_string(scale.shape));
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
    check(std::isfinite(s) && s >= 0, "",
          "scale of " + name + ": row " + std::to_string(r) + " has scale " + std::to_string(s) + " (must be finite and >= 0)");
  }
  for (int8_t v : qm.q) check(v != -128, "", name + ": int8 value -128 is outside the symmetric range [-127, 127]");
  return qm;
}

void int8_linear(const Mat& x, const QuantizedMatrix& w, const RowVec& bias, Mat& y) {
  check(x.cols() == w.cols, "",
        "int8_linear: input has " + std::to_string(x.cols()) + " columns, weight expects " + std::to_string(w.cols));
  check(bias.size() == 0 || bias.size() == w.rows, "",
        "int8_linear: bias has " + std::to_string(bias.size()) + " entries, expected " + std::to_string(w.rows));
  check(w.cols <= kMaxInt8LinearCols, "",
        "int8_linear: " + std::to_string(w.cols) + " input columns could overflow the int32 accumulator");
  const QuantizedMatrix qx = quantize_int8_rows(x, "int8_linear input");
  Eigen::Matrix<int32_t, -1, -1, Eigen::RowMajor> acc;
  int8_gemm(qx, w, acc);
  y.resize(x.rows(), w.rows);
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < w.rows; ++j)
      y(i, j) = float(double(qx.scale[size_t(i)]) * w.scale[size_t(j)] * acc(i, j)) + (bias.size() ? bias(j) : 0.0f);
}

}  // namespace moekit::compress
