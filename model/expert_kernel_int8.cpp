#include "model/expert_kernel_int8.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "model/error.h"
#include "model/matmul.h"
#include "model/vector_math.h"

namespace moekit {

namespace {

constexpr int kRows = 6;  // rows per block: 6 x 4 int32 accumulators in AVX-512 registers

#define MOEKIT_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

// c[r][col0, col0 + 16 V) = sum over k of a[r][k] * q(., k), r < kRows, exact in int32 (codes
// <= 255 times weights in [-127, 127], four to a lane per step). k_len a multiple of 4.
template <int V>
MOEKIT_VNNI void block_vnni(const uint8_t* const* a, int64_t k_len, const Int8KernelWeight& w, int64_t col0,
                            int32_t* c, int64_t ldc) {
  __m512i acc[kRows][V];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_si512();
  const int8_t* q = w.q.data() + col0 * 4;
  for (int64_t g = 0; g < k_len / 4; ++g, q += w.n * 4) {
    __m512i wv[V];
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_si512(q + 64 * v);
    for (int r = 0; r < kRows; ++r) {
      int32_t four;
      std::memcpy(&four, a[r] + 4 * g, 4);
      const __m512i av = _mm512_set1_epi32(four);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, wv[v]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < V; ++v) _mm512_storeu_si512(c + r * ldc + col0 + 16 * v, acc[r][v]);
}

// c[kRows][w.n] = a[kRows][k_len] w^T.
void product(const uint8_t* const* a, int64_t k_len, const Int8KernelWeight& w, int32_t* c) {
  for (int64_t col0 = 0; col0 < w.n; col0 += 64) {
    switch (std::min<int64_t>(4, (w.n - col0) / 16)) {
      case 1: block_vnni<1>(a, k_len, w, col0, c, w.n); break;
      case 2: block_vnni<2>(a, k_len, w, col0, c, w.n); break;
      case 3: block_vnni<3>(a, k_len, w, col0, c, w.n); break;
      default: block_vnni<4>(a, k_len, w, col0, c, w.n); break;
    }
  }
}

// Rows [first, first + n) of a packed int8 weight (all of them: n = w.rows), appended in the
// kernel's layout to `out`, which holds out.n outputs in all.
void append_rows(const PackedInt8Matrix& p, MatRef bias, Int8KernelWeight& out, int64_t offset) {
  const std::vector<int8_t> q = p.weight->int8_values();  // [rows, cols] row-major
  for (Eigen::Index j = 0; j < p.rows; ++j) {
    for (Eigen::Index k = 0; k < p.cols; ++k)
      out.q[static_cast<size_t>(((k / 4) * out.n + offset + j) * 4 + k % 4)] = q[static_cast<size_t>(j * p.cols + k)];
    out.scale[static_cast<size_t>(offset + j)] = p.scale[static_cast<size_t>(j)];
    out.row_sum[static_cast<size_t>(offset + j)] = p.row_sum[static_cast<size_t>(j)];
    out.bias[static_cast<size_t>(offset + j)] = bias.size() ? bias.data()[j] : 0.0f;
  }
}

Int8KernelWeight kernel_weight(int64_t n, int64_t k) {
  Int8KernelWeight w;
  w.n = n;
  w.k = k;
  w.q.assign(static_cast<size_t>(n * k), 0);
  w.scale.assign(static_cast<size_t>(n), 0.0f);
  w.row_sum.assign(static_cast<size_t>(n), 0);
  w.bias.assign(static_cast<size_t>(n), 0.0f);
  return w;
}

}  // namespace

bool expert_kernel_int8_applies(int64_t hidden, int64_t shared, int64_t size) {
  static const bool cpu = [] {
    const char* v = std::getenv("MOEKIT_EXPERT_KERNEL");
    const bool off = v && std::string(v) == "off";
    return !off && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
  }();
  return cpu && vector_math_isa() == VectorIsa::avx512 && int8_max_activation() == 255 && hidden > 0 && size > 0 &&
         shared >= 0 && hidden % 16 == 0 && (shared + size) % 16 == 0 && shared % 4 == 0 && size % 4 == 0 &&
         hidden * (shared + size) <= kExpertKernelInt8MaxWeights;
}

ExpertKernelInt8Weights pack_expert_kernel_int8(const PackedInt8Matrix& w1, MatRef b1, const PackedInt8Matrix& w2,
                                                MatRef b2, const PackedInt8Matrix* s1, MatRef sb1,
                                                const PackedInt8Matrix* s2, MatRef sb2, MatRef gamma, MatRef beta,
                                                float eps, Activation act) {
  const int64_t hidden = w1.cols, size = w1.rows, shared = s1 ? s1->rows : 0;
  const bool fits = w2.rows == hidden && w2.cols == size && (s1 != nullptr) == (s2 != nullptr) &&
                    (!s1 || (s1->cols == hidden && s2->rows == hidden && s2->cols == shared)) &&
                    gamma.size() == hidden && beta.size() == hidden;
  if (!fits)
    fail("", "pack_expert_kernel_int8: the expert's W1 " + shape_str(w1.rows, w1.cols) + " and W2 " +
                 shape_str(w2.rows, w2.cols) + " (with the shared FFN's, the LayerNorm) do not form one expert");
  ExpertKernelInt8Weights w;
  w.hidden = hidden;
  w.shared = shared;
  w.size = size;
  w.act = act;
  w.eps = eps;
  w.up = kernel_weight(shared + size, hidden);
  if (s1) append_rows(*s1, sb1, w.up, 0);
  append_rows(w1, b1, w.up, shared);
  w.down = kernel_weight(hidden, size);
  append_rows(w2, b2, w.down, 0);
  if (s2) {
    w.shared_down = kernel_weight(hidden, shared);
    append_rows(*s2, sb2, w.shared_down, 0);
  }
  w.gamma.assign(gamma.data(), gamma.data() + hidden);
  w.beta.assign(beta.data(), beta.data() + hidden);
  return w;
}

void expert_kernel_int8_forward(const ExpertKernelInt8Weights& w, const float* x, int64_t ldx, const int32_t* rows,
                                const float* scale, int64_t n, float* y, int64_t ldy) {
  if (n <= 0) return;
  if (!expert_kernel_int8_applies(w.hidden, w.shared, w.size))
    fail("", "expert_kernel_int8_forward: this CPU or shape does not run the kernel (check expert_kernel_int8_applies())");
  const int64_t h = w.hidden, s = w.shared, e = w.size, d = s + e;
  const int max_code = int8_max_activation();
  // Per thread (experts run from several threads at once): codes of x and of the hidden layer,
  // their scales and zero points, the sums, the hidden row and the output rows.
  thread_local std::vector<uint8_t> ux, uh;
  thread_local std::vector<int32_t> acc_up, acc_down, acc_shared;
  thread_local std::vector<float> hid, out, shared_out;
  ux.resize(static_cast<size_t>(kRows * h));
  uh.resize(static_cast<size_t>(kRows * d));
  acc_up.resize(static_cast<size_t>(kRows * d));
  acc_down.resize(static_cast<size_t>(kRows * h));
  acc_shared.resize(static_cast<size_t>(kRows * h));
  hid.resize(static_cast<size_t>(d));
  out.resize(static_cast<size_t>(h));
  shared_out.resize(static_cast<size_t>(h));
  float sx[kRows], she[kRows], shs[kRows];
  int32_t zx[kRows], zhe[kRows], zhs[kRows];
  for (int64_t i0 = 0; i0 < n; i0 += kRows) {
    const int64_t m = std::min<int64_t>(kRows, n - i0);
    // A short last block repeats its last row: the extra sums are computed and dropped.
    const uint8_t* x_codes[kRows];
    const uint8_t* shared_codes[kRows];
    const uint8_t* expert_codes[kRows];
    for (int64_t r = 0; r < kRows; ++r) {
      const int64_t src = std::min(r, m - 1);
      x_codes[r] = ux.data() + src * h;
      shared_codes[r] = uh.data() + src * d;
      expert_codes[r] = uh.data() + src * d + s;
    }
    for (int64_t r = 0; r < m; ++r)
      quantize_activation_row(x + static_cast<int64_t>(rows[i0 + r]) * ldx, h, max_code, ux.data() + r * h, sx[r], zx[r]);
    product(x_codes, h, w.up, acc_up.data());
    // The hidden layer: S's part and E's part each dequantised, activated and quantised on its
    // own, as the shared FFN and the expert are in the reference.
    for (int64_t r = 0; r < m; ++r) {
      const int32_t* a = acc_up.data() + r * d;
      uint8_t* u = uh.data() + r * d;
      if (s > 0) {
        dequantize_sums(a, w.up.row_sum.data(), w.up.scale.data(), w.up.bias.data(), s, zx[r], sx[r], hid.data());
        activation_values(w.act, hid.data(), hid.data(), s);
        quantize_activation_row(hid.data(), s, max_code, u, shs[r], zhs[r]);
      }
      dequantize_sums(a + s, w.up.row_sum.data() + s, w.up.scale.data() + s, w.up.bias.data() + s, e, zx[r], sx[r],
                      hid.data() + s);
      activation_values(w.act, hid.data() + s, hid.data() + s, e);
      quantize_activation_row(hid.data() + s, e, max_code, u + s, she[r], zhe[r]);
    }
    product(expert_codes, e, w.down, acc_down.data());
    if (s > 0) product(shared_codes, s, w.shared_down, acc_shared.data());
    for (int64_t r = 0; r < m; ++r) {
      const float* xr = x + static_cast<int64_t>(rows[i0 + r]) * ldx;
      float* yr = y + static_cast<int64_t>(rows[i0 + r]) * ldy;
      dequantize_sums(acc_down.data() + r * h, w.down.row_sum.data(), w.down.scale.data(), w.down.bias.data(), h, zhe[r],
                      she[r], out.data());
      if (s > 0) {
        dequantize_sums(acc_shared.data() + r * h, w.shared_down.row_sum.data(), w.shared_down.scale.data(),
                        w.shared_down.bias.data(), h, zhs[r], shs[r], shared_out.data());
        for (int64_t j = 0; j < h; ++j) out[static_cast<size_t>(j)] += shared_out[static_cast<size_t>(j)];
      }
      for (int64_t j = 0; j < h; ++j) out[static_cast<size_t>(j)] += xr[j];  // the residual, as LayerNorm adds it
      layer_norm_row(out.data(), w.gamma.data(), w.beta.data(), w.eps, h, yr, nullptr);
      if (scale && scale[i0 + r] != 1.0f)
        for (int64_t j = 0; j < h; ++j) yr[j] *= scale[i0 + r];
    }
  }
}

}  // namespace moekit
