#include "model/int8_matmul.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/error.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MOEKIT_X86 1
#endif

// The portable kernel reads 4 packed weights as one little-endian word.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the int8 kernels assume a little-endian host");

namespace moekit {

namespace {

std::string label(const std::string& name) { return name.empty() ? "matrix" : name; }

// The scheme's one rounding step, shared by weights and activations (see the header).
inline int8_t quantize_value(float v, float scale) {
  return static_cast<int8_t>(std::clamp(std::rint(v / scale), -127.0f, 127.0f));
}

// Blocking: a tile is kRowBlock activation rows against one panel of kInt8Panel output rows,
// held in 4 x 4 = 16 AVX-512 accumulators. A chunk of kChunkRows rows is quantised by one thread
// and multiplied against every panel while it is still in cache (16 KiB at 256 inputs). Sizes
// chosen by timing 4096 x 256 x {256, 1024} products on one thread; 32 and 128 rows measured
// within noise of 64.
constexpr Eigen::Index kRowBlock = 4;
constexpr Eigen::Index kChunkRows = 64;
constexpr Eigen::Index kTile = kRowBlock * kInt8Panel;

// acc[r][j] = sum_k x[r][k] * panel(j, k) over `groups` groups of 4 inputs. x: kRowBlock rows of
// u8 (q + 128), ldx bytes apart; panel: groups x 256 bytes as PackedInt8Matrix lays them out.
using TileKernel = void (*)(const uint8_t* x, Eigen::Index ldx, const int8_t* panel, Eigen::Index groups,
                            int32_t* acc);

void tile_portable(const uint8_t* x, Eigen::Index ldx, const int8_t* panel, Eigen::Index groups, int32_t* acc) {
  std::fill(acc, acc + kTile, 0);
  uint32_t words[kInt8Panel];
  for (Eigen::Index g = 0; g < groups; ++g) {
    // One output row's 4 weights are one little-endian 32-bit word; taking the bytes out with
    // shifts (arithmetic right shifts sign-extend) keeps the loop below contiguous, so compilers
    // vectorise it.
    std::memcpy(words, panel + g * 4 * kInt8Panel, sizeof(words));
    for (Eigen::Index r = 0; r < kRowBlock; ++r) {
      const uint8_t* xr = x + r * ldx + 4 * g;
      const int32_t x0 = xr[0], x1 = xr[1], x2 = xr[2], x3 = xr[3];
      int32_t* a = acc + r * kInt8Panel;
      for (Eigen::Index j = 0; j < kInt8Panel; ++j) {
        const uint32_t w = words[j];
        a[j] += x0 * (int32_t(w << 24) >> 24) + x1 * (int32_t(w << 16) >> 24) + x2 * (int32_t(w << 8) >> 24) +
                x3 * (int32_t(w) >> 24);
      }
    }
  }
}

#ifdef MOEKIT_X86
// vpdpbusd: each 32-bit lane adds the dot product of 4 u8 (x, broadcast) and 4 s8 (one output
// row's 4 weights). Compiled for AVX-512 VNNI by the target attribute, whatever the build flags,
// and only called after int8_vnni_supported() said yes. The 16 accumulators are named rather
// than an array: GCC 12 otherwise copies each of them on every iteration.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tile_vnni(const uint8_t* x, Eigen::Index ldx,
                                                                      const int8_t* panel, Eigen::Index groups,
                                                                      int32_t* acc) {
  static_assert(kRowBlock == 4 && kInt8Panel == 64, "the register tile is 4 rows x 4 vectors of 16 outputs");
  __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  __m512i c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  const uint8_t *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;
  for (Eigen::Index g = 0; g < groups; ++g) {
    const int8_t* w = panel + g * 4 * kInt8Panel;
    const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 64);
    const __m512i w2 = _mm512_loadu_si512(w + 128), w3 = _mm512_loadu_si512(w + 192);
    int32_t xv[4];
    std::memcpy(&xv[0], x0 + 4 * g, 4);
    std::memcpy(&xv[1], x1 + 4 * g, 4);
    std::memcpy(&xv[2], x2 + 4 * g, 4);
    std::memcpy(&xv[3], x3 + 4 * g, 4);
    __m512i b = _mm512_set1_epi32(xv[0]);
    c00 = _mm512_dpbusd_epi32(c00, b, w0);
    c01 = _mm512_dpbusd_epi32(c01, b, w1);
    c02 = _mm512_dpbusd_epi32(c02, b, w2);
    c03 = _mm512_dpbusd_epi32(c03, b, w3);
    b = _mm512_set1_epi32(xv[1]);
    c10 = _mm512_dpbusd_epi32(c10, b, w0);
    c11 = _mm512_dpbusd_epi32(c11, b, w1);
    c12 = _mm512_dpbusd_epi32(c12, b, w2);
    c13 = _mm512_dpbusd_epi32(c13, b, w3);
    b = _mm512_set1_epi32(xv[2]);
    c20 = _mm512_dpbusd_epi32(c20, b, w0);
    c21 = _mm512_dpbusd_epi32(c21, b, w1);
    c22 = _mm512_dpbusd_epi32(c22, b, w2);
    c23 = _mm512_dpbusd_epi32(c23, b, w3);
    b = _mm512_set1_epi32(xv[3]);
    c30 = _mm512_dpbusd_epi32(c30, b, w0);
    c31 = _mm512_dpbusd_epi32(c31, b, w1);
    c32 = _mm512_dpbusd_epi32(c32, b, w2);
    c33 = _mm512_dpbusd_epi32(c33, b, w3);
  }
  const __m512i out[16] = {c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33};
  for (int i = 0; i < 16; ++i) _mm512_storeu_si512(acc + 16 * i, out[i]);
}
#endif

TileKernel select_kernel(Int8Kernel kernel) {
  if (kernel == Int8Kernel::portable) return tile_portable;
  if (kernel == Int8Kernel::vnni && !int8_vnni_supported())
    fail("", "int8 kernel: AVX-512 VNNI was requested but this CPU does not support it");
#ifdef MOEKIT_X86
  if (int8_vnni_supported()) return tile_vnni;
#endif
  return tile_portable;
}

Eigen::Index groups_of(Eigen::Index cols) { return (cols + 3) / 4; }

// The shared driver. For each chunk of rows (OpenMP, static: each output row belongs to one
// thread) fill(i0, rows, ldx, xu, sx) writes `rows` u8 rows (q + 128) and their scales; rows up to
// the next multiple of kRowBlock and the bytes past cols are pre-set to 128 (= 0). Then every
// (row block, panel) tile goes to emit(i, n_rows, j0, acc, sx) with the raw u8 x s8 sums.
// fill and emit must not throw (they run inside the parallel region).
template <class Fill, class Emit>
void for_each_tile(Eigen::Index n, const PackedInt8Matrix& w, TileKernel tile, Fill fill, Emit emit) {
  const Eigen::Index groups = groups_of(w.cols), ldx = 4 * groups;
  const Eigen::Index panels = (w.rows + kInt8Panel - 1) / kInt8Panel;
  const Eigen::Index chunks = (n + kChunkRows - 1) / kChunkRows;
#pragma omp parallel if (chunks > 1)
  {
    std::vector<uint8_t> xu(static_cast<size_t>(kChunkRows * ldx));
    std::vector<float> sx(static_cast<size_t>(kChunkRows));
    alignas(64) int32_t acc[kTile];
#pragma omp for schedule(static)
    for (Eigen::Index c = 0; c < chunks; ++c) {
      const Eigen::Index i0 = c * kChunkRows, rows = std::min(kChunkRows, n - i0);
      const Eigen::Index padded = (rows + kRowBlock - 1) / kRowBlock * kRowBlock;
      std::fill(xu.begin(), xu.begin() + padded * ldx, uint8_t{128});
      fill(i0, rows, ldx, xu.data(), sx.data());
      for (Eigen::Index p = 0; p < panels; ++p) {
        const int8_t* panel = w.packed.data() + p * groups * 4 * kInt8Panel;
        for (Eigen::Index r0 = 0; r0 < padded; r0 += kRowBlock) {
          tile(xu.data() + r0 * ldx, ldx, panel, groups, acc);
          emit(i0 + r0, std::min(kRowBlock, rows - r0), p * kInt8Panel, acc, sx.data() + r0);
        }
      }
    }
  }
}

// One activation row -> u8 (q + 128) and its scale, with the weights' rounding. |x| is compared as
// integer bits (same order as the floats for non-negative values), which vectorises and flags
// inf/NaN (bits >= 0x7f800000) in the same pass: such a row gets a NaN scale, so its outputs are
// NaN, as the float product would be.
float quantize_row_u8(const float* x, Eigen::Index cols, uint8_t* out) {
  uint32_t amax_bits = 0;
  for (Eigen::Index k = 0; k < cols; ++k) {
    uint32_t b;
    std::memcpy(&b, x + k, 4);
    amax_bits = std::max(amax_bits, b & 0x7fffffffu);
  }
  if (amax_bits >= 0x7f800000u) return std::nanf("");
  float amax;
  std::memcpy(&amax, &amax_bits, 4);
  const float s = amax / 127.0f;
  if (s == 0) return 0.0f;  // the row stays 128 (q = 0)
  for (Eigen::Index k = 0; k < cols; ++k) out[k] = static_cast<uint8_t>(quantize_value(x[k], s) + 128);
  return s;
}

void check_shapes(Eigen::Index x_cols, const PackedInt8Matrix& w, Eigen::Index bias_size, Eigen::Index bias_rows) {
  check(x_cols == w.cols, "",
        "int8_linear: input has " + std::to_string(x_cols) + " columns, weight expects " + std::to_string(w.cols));
  check(bias_size == 0 || (bias_rows == 1 && bias_size == w.rows), "",
        "int8_linear: bias has " + std::to_string(bias_size) + " entries, expected " + std::to_string(w.rows));
  check(w.cols <= kMaxInt8LinearCols, "",
        "int8_linear: " + std::to_string(w.cols) + " input columns could overflow the int32 accumulator");
}

}  // namespace

bool int8_vnni_supported() {
#ifdef MOEKIT_X86
  static const bool supported = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vnni");
  return supported;
#else
  return false;
#endif
}

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
  const Eigen::Index groups = groups_of(qm.cols), panels = (qm.rows + kInt8Panel - 1) / kInt8Panel;
  p.packed.assign(size_t(panels * groups * 4 * kInt8Panel), 0);
  for (Eigen::Index r = 0; r < qm.rows; ++r) {
    const Eigen::Index panel = r / kInt8Panel, lane = r % kInt8Panel;
    for (Eigen::Index c = 0; c < qm.cols; ++c) {
      const int8_t v = qm.q[size_t(r * qm.cols + c)];
      p.packed[size_t(((panel * groups + c / 4) * kInt8Panel + lane) * 4 + c % 4)] = v;
      p.row_sum[size_t(r)] += v;
    }
  }
  return p;
}

void int8_linear(MatRef x, const PackedInt8Matrix& w, MatRef bias, Mat& y, Int8Kernel kernel) {
  check_shapes(x.cols(), w, bias.size(), bias.rows());
  const TileKernel tile = select_kernel(kernel);
  y.resize(x.rows(), w.rows);
  const float* b = bias.size() ? bias.data() : nullptr;
  const Eigen::Index cols = w.cols;
  auto fill = [&](Eigen::Index i0, Eigen::Index rows, Eigen::Index ldx, uint8_t* xu, float* sx) {
    for (Eigen::Index r = 0; r < rows; ++r) sx[r] = quantize_row_u8(x.row(i0 + r).data(), cols, xu + r * ldx);
  };
  // y = sx * sw * (sum (q_x + 128) q_w - 128 sum q_w) + b: the integer part exact, the scales
  // multiplied in double, one rounding to float, one for the bias.
  auto emit = [&](Eigen::Index i, Eigen::Index n_rows, Eigen::Index j0, const int32_t* acc, const float* sx) {
    const Eigen::Index n_cols = std::min(kInt8Panel, w.rows - j0);
    for (Eigen::Index r = 0; r < n_rows; ++r) {
      float* yr = &y(i + r, j0);
      const int32_t* a = acc + r * kInt8Panel;
      const double s = sx[r];
      for (Eigen::Index j = 0; j < n_cols; ++j) {
        const int32_t dot = a[j] - 128 * w.row_sum[size_t(j0 + j)];
        yr[j] = static_cast<float>(s * w.scale[size_t(j0 + j)] * dot) + (b ? b[j0 + j] : 0.0f);
      }
    }
  };
  for_each_tile(x.rows(), w, tile, fill, emit);
}

void int8_linear(MatRef x, const QuantizedMatrix& w, const RowVec& bias, Mat& y) {
  int8_linear(x, pack_int8(w), bias, y);
}

Int32Mat int8_matmul(const QuantizedMatrix& x, const PackedInt8Matrix& w, Int8Kernel kernel) {
  check(x.cols == w.cols, "",
        "int8_matmul: input has " + std::to_string(x.cols) + " columns, weight expects " + std::to_string(w.cols));
  check(w.cols <= kMaxInt8LinearCols, "",
        "int8_matmul: " + std::to_string(w.cols) + " input columns could overflow the int32 accumulator");
  const TileKernel tile = select_kernel(kernel);
  Int32Mat out(x.rows, w.rows);
  auto fill = [&](Eigen::Index i0, Eigen::Index rows, Eigen::Index ldx, uint8_t* xu, float* sx) {
    for (Eigen::Index r = 0; r < rows; ++r) {
      sx[r] = x.scale[size_t(i0 + r)];
      for (Eigen::Index k = 0; k < x.cols; ++k)
        xu[r * ldx + k] = static_cast<uint8_t>(x.q[size_t((i0 + r) * x.cols + k)] + 128);
    }
  };
  auto emit = [&](Eigen::Index i, Eigen::Index n_rows, Eigen::Index j0, const int32_t* acc, const float*) {
    const Eigen::Index n_cols = std::min(kInt8Panel, w.rows - j0);
    for (Eigen::Index r = 0; r < n_rows; ++r)
      for (Eigen::Index j = 0; j < n_cols; ++j)
        out(i + r, j0 + j) = acc[r * kInt8Panel + j] - 128 * w.row_sum[size_t(j0 + j)];
  };
  for_each_tile(x.rows, w, tile, fill, emit);
  return out;
}

}  // namespace moekit
