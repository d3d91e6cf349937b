#include "model/expert_kernel.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "model/activation.h"
#include "model/error.h"
#include "model/simd_math.h"
#include "model/vector_math.h"

namespace moekit {

namespace {

constexpr int kRows = 6;  // rows per block: 6 x 4 AVX-512 accumulators (6 x 2 with AVX2) in registers

// c[r][col0, col0 + V * lanes) = init[...] (+ res[r][...] when res) + sum_k a[r][k] b[k][...], r < kRows;
// b has row stride ldb, c row stride ldc.
using BlockFn = void (*)(const float* const* a, int64_t k_len, const float* b, int64_t ldb, const float* init,
                         const float* const* res, int64_t col0, float* c, int64_t ldc);

template <int V>
MOEKIT_AVX512 void block_avx512(const float* const* a, int64_t k_len, const float* b, int64_t ldb, const float* init,
                                const float* const* res, int64_t col0, float* c, int64_t ldc) {
  __m512 acc[kRows][V];
  for (int v = 0; v < V; ++v) {
    const __m512 start = _mm512_loadu_ps(init + col0 + 16 * v);
    for (int r = 0; r < kRows; ++r)
      acc[r][v] = res ? _mm512_add_ps(start, _mm512_loadu_ps(res[r] + col0 + 16 * v)) : start;
  }
  const float* bk = b + col0;
  for (int64_t k = 0; k < k_len; ++k, bk += ldb) {
    __m512 w[V];
    for (int v = 0; v < V; ++v) w[v] = _mm512_loadu_ps(bk + 16 * v);
    for (int r = 0; r < kRows; ++r) {
      const __m512 av = _mm512_set1_ps(a[r][k]);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(av, w[v], acc[r][v]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(c + r * ldc + col0 + 16 * v, acc[r][v]);
}

template <int V>
MOEKIT_AVX2 void block_avx2(const float* const* a, int64_t k_len, const float* b, int64_t ldb, const float* init,
                            const float* const* res, int64_t col0, float* c, int64_t ldc) {
  __m256 acc[kRows][V];
  for (int v = 0; v < V; ++v) {
    const __m256 start = _mm256_loadu_ps(init + col0 + 8 * v);
    for (int r = 0; r < kRows; ++r)
      acc[r][v] = res ? _mm256_add_ps(start, _mm256_loadu_ps(res[r] + col0 + 8 * v)) : start;
  }
  const float* bk = b + col0;
  for (int64_t k = 0; k < k_len; ++k, bk += ldb) {
    __m256 w[V];
    for (int v = 0; v < V; ++v) w[v] = _mm256_loadu_ps(bk + 8 * v);
    for (int r = 0; r < kRows; ++r) {
      const __m256 av = _mm256_broadcast_ss(a[r] + k);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(av, w[v], acc[r][v]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(c + r * ldc + col0 + 8 * v, acc[r][v]);
}

// The blocks of one ISA: blocks[v - 1] spans v vectors of `lanes` floats.
struct Blocks {
  int lanes, max_vectors;
  BlockFn blocks[4];
};

const Blocks& blocks_for(VectorIsa isa) {
  static const Blocks avx512{16, 4, {block_avx512<1>, block_avx512<2>, block_avx512<3>, block_avx512<4>}};
  static const Blocks avx2{8, 2, {block_avx2<1>, block_avx2<2>, nullptr, nullptr}};
  if (isa == VectorIsa::avx512) return avx512;
  if (isa == VectorIsa::avx2) return avx2;
  fail("", "expert_kernel_forward: this CPU has no AVX2 + FMA (check expert_kernel_applies())");
}

// c[kRows][n] = init (+ res rows) + a[kRows][k_len] b[k_len][n], n a multiple of the lanes.
void product(const Blocks& bl, const float* const* a, int64_t k_len, const float* b, int64_t n, const float* init,
             const float* const* res, float* c) {
  const int64_t span = static_cast<int64_t>(bl.lanes) * bl.max_vectors;
  for (int64_t col0 = 0; col0 < n; col0 += span) {
    const int64_t vectors = std::min<int64_t>(bl.max_vectors, (n - col0) / bl.lanes);
    bl.blocks[vectors - 1](a, k_len, b, n, init, res, col0, c, n);
  }
}

}  // namespace

bool expert_kernel_applies(int64_t hidden, int64_t size) {
  static const bool off = [] {
    const char* v = std::getenv("MOEKIT_EXPERT_KERNEL");
    return v && std::string(v) == "off";
  }();
  return !off && vector_math_isa() != VectorIsa::portable && hidden > 0 && size > 0 && hidden % 16 == 0 && size % 16 == 0 &&
         hidden * size <= kExpertKernelMaxWeights;
}

ExpertKernelWeights pack_expert_kernel(MatRef w1, MatRef b1, MatRef w2, MatRef b2, MatRef gamma, MatRef beta,
                                       float eps, Activation act) {
  const int64_t size = w1.rows(), hidden = w1.cols();
  if (w2.rows() != hidden || w2.cols() != size || b1.size() != size || b2.size() != hidden ||
      gamma.size() != hidden || beta.size() != hidden)
    fail("", "pack_expert_kernel: W1 " + shape_str(w1.rows(), w1.cols()) + " and W2 " + shape_str(w2.rows(), w2.cols()) +
                 " (or a bias or LayerNorm vector) do not form one expert");
  ExpertKernelWeights w;
  w.hidden = hidden;
  w.size = size;
  w.act = act;
  w.eps = eps;
  w.w1t.resize(static_cast<size_t>(hidden * size));
  w.w2t.resize(static_cast<size_t>(hidden * size));
  Eigen::Map<Mat>(w.w1t.data(), hidden, size) = w1.transpose();
  Eigen::Map<Mat>(w.w2t.data(), size, hidden) = w2.transpose();
  w.b1.assign(b1.data(), b1.data() + size);
  w.b2.assign(b2.data(), b2.data() + hidden);
  w.gamma.assign(gamma.data(), gamma.data() + hidden);
  w.beta.assign(beta.data(), beta.data() + hidden);
  return w;
}

void expert_kernel_forward(const ExpertKernelWeights& w, const float* x, int64_t ldx, const int32_t* rows,
                           const float* scale, int64_t n, float* y, int64_t ldy) {
  if (n <= 0) return;
  const Blocks& bl = blocks_for(vector_math_isa());
  const int64_t h = w.hidden, d = w.size;
  thread_local std::vector<float> hid, out;  // per thread: experts run from several threads at once
  hid.resize(static_cast<size_t>(kRows * d));
  out.resize(static_cast<size_t>(kRows * h));
  const float* hid_rows[kRows];
  for (int r = 0; r < kRows; ++r) hid_rows[r] = hid.data() + r * d;
  for (int64_t i0 = 0; i0 < n; i0 += kRows) {
    const int64_t m = std::min<int64_t>(kRows, n - i0);
    // A short last block repeats its last row: the extra results are computed and dropped.
    const float* x_rows[kRows];
    for (int64_t r = 0; r < kRows; ++r) x_rows[r] = x + static_cast<int64_t>(rows[i0 + std::min(r, m - 1)]) * ldx;
    product(bl, x_rows, h, w.w1t.data(), d, w.b1.data(), nullptr, hid.data());
    for (int r = 0; r < kRows; ++r) activation_values(w.act, hid_rows[r], hid.data() + r * d, d);
    product(bl, hid_rows, d, w.w2t.data(), h, w.b2.data(), x_rows, out.data());  // + b2 + the residual
    for (int64_t r = 0; r < m; ++r) {
      float* yr = y + static_cast<int64_t>(rows[i0 + r]) * ldy;
      layer_norm_row(out.data() + r * h, w.gamma.data(), w.beta.data(), w.eps, h, yr, nullptr);
      if (scale && scale[i0 + r] != 1.0f)
        for (int64_t j = 0; j < h; ++j) yr[j] *= scale[i0 + r];
    }
  }
}

}  // namespace moekit
