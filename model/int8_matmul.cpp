#include "model/int8_matmul.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <immintrin.h>
#include <omp.h>

#include "model/activation.h"
#include "model/error.h"
#include "model/target_clones.h"
#include "model/vector_math.h"

namespace moekit {

namespace {

std::string label(const std::string& name) { return name.empty() ? "matrix" : name; }

// The weights' one rounding step (see the header).
inline int8_t quantize_value(float v, float scale) {
  return static_cast<int8_t>(std::clamp(std::rint(v / scale), -127.0f, 127.0f));
}

// The hot loops of int8 inference (activation quantisation, the float epilogue) are plain loops
// that the compiler vectorises, built for AVX-512 and AVX2 as well as the baseline; the CPU picks
// one when the program starts (no -m flags). `omp simd` vectorises the min/max and finiteness
// reductions without fast-math, so every clone computes the same values as the scalar code.

// rint by the 1.5 * 2^23 trick (ties to even, exact for |v| < 2^22; here |v| <= 255), which
// vectorises where std::rint would not at the baseline ISA.
constexpr float kRound = 12582912.0f;

// One code: clamp(rint(x / s) + zp, 0, top).
inline uint8_t code(float x, float s, float zp, float top) {
  const float v = ((x / s + kRound) - kRound) + zp;
  return static_cast<uint8_t>(static_cast<int32_t>(std::min(std::max(v, 0.0f), top)));
}

// codes u[k] = code(x[k], ...). GCC vectorised the float -> u8 narrowing of
// the plain loop at 128 bits even in its AVX-512 clone (`perf annotate`, Intel Xeon 2026-12-02),
// so AVX-512 CPUs run this version: the same operations in the same order, so the same codes.
// GCC 12 warns of the intrinsics' undefined pass-through operands (a false positive; as in
// model/vector_math.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void codes_avx512(const float* x, Eigen::Index cols, float s, float zp, float top,
                                                      uint8_t* u) {
  const __m512 vs = _mm512_set1_ps(s), vr = _mm512_set1_ps(kRound), vz = _mm512_set1_ps(zp), vt = _mm512_set1_ps(top);
  const __m512 zero = _mm512_setzero_ps();
  Eigen::Index k = 0;
  for (; k + 16 <= cols; k += 16) {
    __m512 v = _mm512_sub_ps(_mm512_add_ps(_mm512_div_ps(_mm512_loadu_ps(x + k), vs), vr), vr);
    v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(v, vz), zero), vt);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(u + k), _mm512_cvtusepi32_epi8(_mm512_cvttps_epi32(v)));
  }
  for (; k < cols; ++k) u[k] = code(x[k], s, zp, top);
}
#pragma GCC diagnostic pop

// One activation row -> codes, scale and zero point (see the header). Returns false for a row
// with a non-finite entry.
MOEKIT_CLONES bool quantize_row(const float* x, Eigen::Index cols, int max_code, uint8_t* u, float& scale,
                                int32_t& zero) {
  float lo = 0.0f, hi = 0.0f, nonfinite = 0.0f;
#pragma omp simd reduction(min : lo) reduction(max : hi) reduction(+ : nonfinite)
  for (Eigen::Index k = 0; k < cols; ++k) {
    const float v = x[k];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    nonfinite += v - v;  // inf - inf and NaN - NaN are NaN
  }
  if (!(nonfinite == 0)) {
    std::fill(u, u + cols, uint8_t{0});
    scale = std::nanf("");
    zero = 0;
    return false;
  }
  scale = (hi - lo) / static_cast<float>(max_code);
  if (!(scale > 0)) {  // an all-zero row, or a range so small the scale underflows
    std::fill(u, u + cols, uint8_t{0});
    scale = 0;
    zero = 0;
    return true;
  }
  const float top = static_cast<float>(max_code);
  const float zp = std::clamp(std::rint(-lo / scale), 0.0f, top);
  zero = static_cast<int32_t>(zp);
  const float s = scale;
  if (vector_math_isa() == VectorIsa::avx512) {
    codes_avx512(x, cols, s, zp, top, u);
    return true;
  }
#pragma omp simd
  for (Eigen::Index k = 0; k < cols; ++k) u[k] = code(x[k], s, zp, top);
  return true;
}

// y_i = (acc_i - zero * row_sum) * (scale * w_scale) + bias, one output row.
MOEKIT_CLONES void dequantize_row(const int32_t* acc, const int32_t* row_sum, const float* w_scale, const float* bias,
                                  Eigen::Index n, int32_t zero, float scale, float* y) {
  if (bias) {
#pragma omp simd
    for (Eigen::Index j = 0; j < n; ++j)
      y[j] = static_cast<float>(acc[j] - zero * row_sum[j]) * (scale * w_scale[j]) + bias[j];
  } else {
#pragma omp simd
    for (Eigen::Index j = 0; j < n; ++j) y[j] = static_cast<float>(acc[j] - zero * row_sum[j]) * (scale * w_scale[j]);
  }
}

void check_cols(Eigen::Index x_cols, const PackedInt8Matrix& w, const char* what) {
  check(x_cols == w.cols, "",
        std::string(what) + ": input has " + std::to_string(x_cols) + " columns, weight expects " + std::to_string(w.cols));
  check(w.cols <= kMaxInt8LinearCols, "",
        std::string(what) + ": " + std::to_string(w.cols) + " input columns could overflow the int32 accumulator");
}

// Runs the product a * w^T in chunks of rows, each chunk on one thread, and hands each chunk's
// int32 sums to epilogue(acc, first_row, rows) while they are in that core's cache: the whole
// product's sums (16 MB for an FFN up-projection of 4096 tokens) were written to memory and read
// back. A caller already on one thread of a parallel region (an MoE expert's rows, a thread's
// share of the batch) runs the chunks in turn; elsewhere, batches too small to give every thread
// two chunks run as one product on all threads.
template <typename Epilogue>
void multiply_in_chunks(const QuantizedActivations& a, const PackedInt8Matrix& w, Epilogue epilogue) {
  // About 32k sums (128 KB) a chunk, 32 to 256 rows: 32768, 65536, 131072 and 262144 sums ran
  // base int8 MoE at 13.1k, 12.9k, 12.5k and 11.8k tokens/s (Intel Xeon with AMX, 2026-12-04).
  const Eigen::Index m = a.rows, n = w.rows;
  const Eigen::Index chunk = std::clamp<Eigen::Index>(32768 / std::max<Eigen::Index>(n, 1) / 16 * 16, 32, 256);
  const Eigen::Index chunks = (m + chunk - 1) / chunk;
  if (chunks < (omp_in_parallel() ? 2 : 2 * omp_get_max_threads())) {
    Int32Mat acc(m, n);
    w.weight->multiply_int8(a.u.data(), m, acc.data());
#pragma omp parallel for schedule(static) if (m * n > 65536)
    for (Eigen::Index i = 0; i < m; ++i) epilogue(acc.row(i).data(), i, 1);
    return;
  }
#pragma omp parallel
  {
    thread_local std::vector<int32_t> acc;
    acc.resize(static_cast<size_t>(chunk * n));
#pragma omp for schedule(static)
    for (Eigen::Index c = 0; c < chunks; ++c) {
      const Eigen::Index r0 = c * chunk, rows = std::min(chunk, m - r0);
      w.weight->multiply_int8(a.u.data() + r0 * a.cols, rows, acc.data());
      epilogue(acc.data(), r0, rows);
    }
  }
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
    for (Eigen::Index c = 0; c < w.cols(); ++c) q[c] = quantize_value(w(r, c), s);
  }
  return qm;
}

Mat dequantize(const QuantizedMatrix& qm) {
  Mat m(qm.rows, qm.cols);
  for (Eigen::Index r = 0; r < qm.rows; ++r)
    for (Eigen::Index c = 0; c < qm.cols; ++c) m(r, c) = qm.scale[size_t(r)] * float(qm.q[size_t(r * qm.cols + c)]);
  return m;
}

PackedInt8Matrix pack_int8(const QuantizedMatrix& qm) {
  check(qm.q.size() == size_t(qm.rows * qm.cols) && qm.scale.size() == size_t(qm.rows), "",
        "pack_int8: matrix " + shape_str(qm.rows, qm.cols) + " has " + std::to_string(qm.q.size()) + " values and " +
            std::to_string(qm.scale.size()) + " scales");
  PackedInt8Matrix p;
  p.rows = qm.rows;
  p.cols = qm.cols;
  p.scale = qm.scale;
  p.row_sum.assign(size_t(qm.rows), 0);
  for (Eigen::Index r = 0; r < qm.rows; ++r)
    for (Eigen::Index c = 0; c < qm.cols; ++c) p.row_sum[size_t(r)] += qm.q[size_t(r * qm.cols + c)];
  p.weight = std::make_shared<const PackedWeight>(qm.q.data(), qm.rows, qm.cols);
  return p;
}

PackedInt8Matrix stack_int8_rows(const std::vector<const PackedInt8Matrix*>& parts) {
  QuantizedMatrix all;
  for (const PackedInt8Matrix* p : parts) {
    if (all.rows == 0) all.cols = p->cols;
    check(p->cols == all.cols, "",
          "stack_int8_rows: widths differ (" + std::to_string(p->cols) + " vs " + std::to_string(all.cols) + ")");
    const std::vector<int8_t> q = p->weight->int8_values();
    all.q.insert(all.q.end(), q.begin(), q.end());
    all.scale.insert(all.scale.end(), p->scale.begin(), p->scale.end());
    all.rows += p->rows;
  }
  return pack_int8(all);
}

bool quantize_activation_row(const float* x, Eigen::Index cols, int max_code, uint8_t* u, float& scale, int32_t& zero) {
  return quantize_row(x, cols, max_code, u, scale, zero);
}

void dequantize_sums(const int32_t* acc, const int32_t* row_sum, const float* w_scale, const float* bias, Eigen::Index n,
                     int32_t zero, float scale, float* y) {
  dequantize_row(acc, row_sum, w_scale, bias, n, zero, scale, y);
}

QuantizedActivations quantize_activations(MatRef x, int max_code) {
  QuantizedActivations a;
  a.rows = x.rows();
  a.cols = x.cols();
  a.u.resize(size_t(x.size()));
  a.scale.resize(size_t(x.rows()));
  a.zero.resize(size_t(x.rows()));
#pragma omp parallel for schedule(static) if (x.size() > 65536)
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    quantize_row(x.row(i).data(), x.cols(), max_code, a.u.data() + i * x.cols(), a.scale[size_t(i)], a.zero[size_t(i)]);
  return a;
}

void int8_linear(MatRef x, const PackedInt8Matrix& w, MatRef bias, Mat& y) {
  check_cols(x.cols(), w, "int8_linear");  // before quantising a row of the wrong length
  int8_linear(quantize_activations(x), w, bias, y);
}

void int8_linear(const QuantizedActivations& a, const PackedInt8Matrix& w, MatRef bias, Mat& y) {
  check_cols(a.cols, w, "int8_linear");
  check(bias.size() == 0 || (bias.rows() == 1 && bias.size() == w.rows), "",
        "int8_linear: bias has " + std::to_string(bias.size()) + " entries, expected " + std::to_string(w.rows));
  const Eigen::Index m = a.rows, n = w.rows;
  y.resize(m, n);
  if (y.size() == 0) return;
  // The integer part exact; then float: the dot rounded once, the scale product once, the
  // product once and the bias add once (a few 2^-24 relative in all).
  const float* b = bias.size() ? bias.data() : nullptr;
  multiply_in_chunks(a, w, [&](const int32_t* acc, Eigen::Index r0, Eigen::Index rows) {
    for (Eigen::Index i = r0; i < r0 + rows; ++i)
      dequantize_row(acc + (i - r0) * n, w.row_sum.data(), w.scale.data(), b, n, a.zero[size_t(i)], a.scale[size_t(i)],
                     y.row(i).data());
  });
}

QuantizedActivations int8_linear_activated(const QuantizedActivations& a, const PackedInt8Matrix& w, MatRef bias,
                                           Activation act) {
  check_cols(a.cols, w, "int8_linear_activated");
  check(bias.size() == 0 || (bias.rows() == 1 && bias.size() == w.rows), "",
        "int8_linear_activated: bias has " + std::to_string(bias.size()) + " entries, expected " + std::to_string(w.rows));
  const Eigen::Index m = a.rows, n = w.rows;
  QuantizedActivations out;
  out.rows = m;
  out.cols = n;
  out.u.resize(size_t(m * n));
  out.scale.resize(size_t(m));
  out.zero.resize(size_t(m));
  if (m == 0 || n == 0) return out;
  const float* b = bias.size() ? bias.data() : nullptr;
  const int max_code = int8_max_activation();
  multiply_in_chunks(a, w, [&](const int32_t* acc, Eigen::Index r0, Eigen::Index rows) {
    thread_local std::vector<float> row;  // one hidden row, in cache
    row.resize(static_cast<size_t>(n));
    for (Eigen::Index i = r0; i < r0 + rows; ++i) {
      dequantize_row(acc + (i - r0) * n, w.row_sum.data(), w.scale.data(), b, n, a.zero[size_t(i)], a.scale[size_t(i)],
                     row.data());
      activation_values(act, row.data(), row.data(), n);
      quantize_row(row.data(), n, max_code, out.u.data() + i * n, out.scale[size_t(i)], out.zero[size_t(i)]);
    }
  });
  return out;
}

void int8_linear(MatRef x, const QuantizedMatrix& w, const RowVec& bias, Mat& y) {
  int8_linear(x, pack_int8(w), bias, y);
}

Int32Mat int8_matmul(const QuantizedActivations& a, const PackedInt8Matrix& w) {
  check_cols(a.cols, w, "int8_matmul");
  const int max_code = int8_max_activation();
  for (uint8_t v : a.u)
    check(v <= max_code, "", "int8_matmul: activation code " + std::to_string(v) + " is above this CPU's exact range 0.." +
                                 std::to_string(max_code));
  Int32Mat out(a.rows, w.rows);
  w.weight->multiply_int8(a.u.data(), a.rows, out.data());
  return out;
}

}  // namespace moekit
