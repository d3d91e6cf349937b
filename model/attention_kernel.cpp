#include "model/attention_kernel.h"

#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "model/error.h"
#include "model/matmul.h"
#include "model/simd_math.h"
#include "model/vector_math.h"

namespace moekit {

namespace {

constexpr int kRows = 4;  // query rows per block: their accumulators fill the vector registers

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// 8x8 block: dst[c*dld + r] = src[r*sld + c]. (Every CPU with AVX-512 has AVX2.)
MOEKIT_AVX2 void transpose8x8(const float* src, int64_t sld, float* dst, int64_t dld) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * sld);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * dld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * dld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

// kt[d*ktld + j] = k[j*ld + d] for the real keys; columns [real, ktld) are 0, so that whole
// vectors of scores can be computed and stored (softmax reads only [0, real)).
MOEKIT_AVX2 void transpose_keys(const float* k, int64_t ld, int64_t real, int64_t hd, int64_t ktld,
                                std::vector<float>& kt) {
  kt.resize(static_cast<size_t>(hd * ktld));
  float* t = kt.data();
  const int64_t j8 = real / 8 * 8, d8 = hd / 8 * 8;
  for (int64_t j = 0; j < j8; j += 8)
    for (int64_t d = 0; d < d8; d += 8) transpose8x8(k + j * ld + d, ld, t + d * ktld + j, ktld);
  for (int64_t j = 0; j < real; ++j)  // the edges the 8x8 blocks leave
    for (int64_t d = j < j8 ? d8 : 0; d < hd; ++d) t[d * ktld + j] = k[j * ld + d];
  for (int64_t d = 0; d < hd; ++d) std::fill(t + d * ktld + real, t + (d + 1) * ktld, 0.0f);
}

// The real keys' value rows, contiguous: rows strided by 3*hidden fall into a few L1 sets (at
// hidden 256, 4 of them a line), so the products would read them from L2.
void copy_values(const float* v, int64_t ld, int64_t real, int64_t hd, std::vector<float>& vc) {
  vc.resize(static_cast<size_t>(real * hd));
  for (int64_t j = 0; j < real; ++j) std::copy(v + j * ld, v + j * ld + hd, vc.begin() + j * hd);
}

// Rows of the block: query row i0 + r, the last block's missing rows repeating row seq - 1
// (computed twice, stored twice with the same values).
void block_rows(const float* q, int64_t ld, float* ctx, int64_t ldc, int64_t seq, int64_t i0, const float** qr,
                float** cr) {
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = std::min(i0 + r, seq - 1);
    qr[r] = q + i * ld;
    cr[r] = ctx + i * ldc;
  }
}

// ---- AVX-512 (16 lanes; up to 4 vectors a row: 16 accumulators) ----
// GCC 12's _mm512_reduce_* build vectors from _mm512_undefined_*() and warn (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// s[r*ktld + j0 + 16c ...] = sum_d qr[r][d] * kt[d*ktld + j0 + 16c ...]; mx[r] takes the maximum
// of the row's real scores (the first `valid` columns of the chunk).
template <int C>
MOEKIT_AVX512 void scores_avx512(const float* const* qr, const float* kt, int64_t ktld, int64_t hd, int64_t j0,
                                 int64_t valid, float* s, __m512* mx) {
  __m512 acc[kRows][C];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    __m512 kv[C];
    for (int c = 0; c < C; ++c) kv[c] = _mm512_loadu_ps(kt + d * ktld + j0 + 16 * c);
    for (int r = 0; r < kRows; ++r) {
      const __m512 b = _mm512_set1_ps(qr[r][d]);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(b, kv[c], acc[r][c]);
    }
  }
  for (int c = 0; c < C; ++c) {
    const __mmask16 m = valid > 16 * c ? simd::tail_mask(valid - 16 * c) : static_cast<__mmask16>(0);
    for (int r = 0; r < kRows; ++r) {
      _mm512_storeu_ps(s + r * ktld + j0 + 16 * c, acc[r][c]);
      mx[r] = _mm512_mask_max_ps(mx[r], m, mx[r], acc[r][c]);
    }
  }
}

// x[0..n) <- e^((x - mx) * scale); returns 1 / their sum. With round_probs the row becomes the
// probabilities rounded to bf16 and the result is 1.
MOEKIT_AVX512 float exp_row_avx512(float* x, int64_t n, float mx, float scale, bool round_probs) {
  const __m512 vmx = _mm512_set1_ps(mx), vs = _mm512_set1_ps(scale);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = simd::tail_mask(n - i);
    const __m512 e = simd::exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmx), vs));
    _mm512_mask_storeu_ps(x + i, m, e);
    sum = _mm512_mask_add_ps(sum, m, sum, e);
  }
  const float inv = 1.0f / _mm512_reduce_add_ps(sum);
  if (!round_probs) return inv;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
  round_to_bf16(x, static_cast<size_t>(n));
  return 1.0f;
}

// cr[r][d0 + 16c ...] = inv[r] * sum_{j < real} p[r*pld + j] * v[j*ld + d0 + 16c ...]; with Tail,
// the last vector reads and writes the lanes in `last` only (the head's columns end there).
template <int C, bool Tail>
MOEKIT_AVX512 void context_avx512(const float* p, int64_t pld, const float* v, int64_t ld, int64_t real, int64_t d0,
                                  __mmask16 last, const float* inv, float* const* cr) {
  __m512 acc[kRows][C];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < real; ++j) {
    const float* vj = v + j * ld + d0;
    __m512 vv[C];
    for (int c = 0; c < (Tail ? C - 1 : C); ++c) vv[c] = _mm512_loadu_ps(vj + 16 * c);
    if (Tail) vv[C - 1] = _mm512_maskz_loadu_ps(last, vj + 16 * (C - 1));
    for (int r = 0; r < kRows; ++r) {
      const __m512 b = _mm512_set1_ps(p[r * pld + j]);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(b, vv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    const __m512 f = _mm512_set1_ps(inv[r]);
    for (int c = 0; c + 1 < C; ++c) _mm512_storeu_ps(cr[r] + d0 + 16 * c, _mm512_mul_ps(acc[r][c], f));
    _mm512_mask_storeu_ps(cr[r] + d0 + 16 * (C - 1), last, _mm512_mul_ps(acc[r][C - 1], f));
  }
}

MOEKIT_AVX512 void head_avx512(const float* q, const float* k, const float* v, int64_t ld, int64_t seq, int64_t real,
                               int64_t hd, float scale, bool round_probs, float* ctx, int64_t ldc) {
  thread_local std::vector<float> kt, vc, s;
  const int64_t ktld = round_up(real, 16);
  transpose_keys(k, ld, real, hd, ktld, kt);
  copy_values(v, ld, real, hd, vc);
  s.resize(static_cast<size_t>(kRows * ktld));
  const float* qr[kRows];
  float* cr[kRows];
  float inv[kRows];
  for (int64_t i0 = 0; i0 < seq; i0 += kRows) {
    block_rows(q, ld, ctx, ldc, seq, i0, qr, cr);
    __m512 mx[kRows];
    for (int r = 0; r < kRows; ++r) mx[r] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    for (int64_t j0 = 0; j0 < ktld; j0 += 64) {
      const int64_t valid = real - j0;
      switch (std::min<int64_t>(4, (ktld - j0) / 16)) {
        case 1: scores_avx512<1>(qr, kt.data(), ktld, hd, j0, valid, s.data(), mx); break;
        case 2: scores_avx512<2>(qr, kt.data(), ktld, hd, j0, valid, s.data(), mx); break;
        case 3: scores_avx512<3>(qr, kt.data(), ktld, hd, j0, valid, s.data(), mx); break;
        default: scores_avx512<4>(qr, kt.data(), ktld, hd, j0, valid, s.data(), mx); break;
      }
    }
    for (int r = 0; r < kRows; ++r)
      inv[r] = exp_row_avx512(s.data() + r * ktld, real, _mm512_reduce_max_ps(mx[r]), scale, round_probs);
    const float* p = s.data();
    for (int64_t d0 = 0; d0 < hd; d0 += 64) {
      const int64_t rest = hd - d0, vectors = std::min<int64_t>(4, (rest + 15) / 16);
      const int64_t tail = rest - 16 * (vectors - 1);  // columns in the last vector
      const __mmask16 last = simd::tail_mask(tail);
      if (tail < 16) {
        switch (vectors) {
          case 1: context_avx512<1, true>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
          case 2: context_avx512<2, true>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
          case 3: context_avx512<3, true>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
          default: context_avx512<4, true>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
        }
      } else {
        switch (vectors) {
          case 1: context_avx512<1, false>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
          case 2: context_avx512<2, false>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
          case 3: context_avx512<3, false>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
          default: context_avx512<4, false>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
        }
      }
    }
  }
}

#pragma GCC diagnostic pop

// ---- AVX2 + FMA (8 lanes; up to 3 vectors a row: 12 of the 16 registers accumulate) ----

MOEKIT_AVX2 inline __m256i lanes_below(int64_t n) {  // lanes [0, n) set, n clamped to [0, 8]
  const int k = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(8, n)));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int C>
MOEKIT_AVX2 void scores_avx2(const float* const* qr, const float* kt, int64_t ktld, int64_t hd, int64_t j0,
                             int64_t valid, float* s, __m256* mx) {
  __m256 acc[kRows][C];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    __m256 kv[C];
    for (int c = 0; c < C; ++c) kv[c] = _mm256_loadu_ps(kt + d * ktld + j0 + 8 * c);
    for (int r = 0; r < kRows; ++r) {
      const __m256 b = _mm256_broadcast_ss(qr[r] + d);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(b, kv[c], acc[r][c]);
    }
  }
  for (int c = 0; c < C; ++c) {
    const __m256 m = _mm256_castsi256_ps(lanes_below(valid - 8 * c));
    for (int r = 0; r < kRows; ++r) {
      _mm256_storeu_ps(s + r * ktld + j0 + 8 * c, acc[r][c]);
      mx[r] = _mm256_blendv_ps(mx[r], _mm256_max_ps(mx[r], acc[r][c]), m);
    }
  }
}

MOEKIT_AVX2 float exp_row_avx2(float* x, int64_t n, float mx, float scale, bool round_probs) {
  const __m256 vmx = _mm256_set1_ps(mx), vs = _mm256_set1_ps(scale);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lanes_below(n - i);
    const __m256 e = _mm256_and_ps(simd::exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vmx), vs)),
                                   _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(x + i, m, e);
    sum = _mm256_add_ps(sum, e);
  }
  const float inv = 1.0f / simd::hsum(sum);
  if (!round_probs) return inv;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
  round_to_bf16(x, static_cast<size_t>(n));
  return 1.0f;
}

template <int C, bool Tail>
MOEKIT_AVX2 void context_avx2(const float* p, int64_t pld, const float* v, int64_t ld, int64_t real, int64_t d0,
                              __m256i last, const float* inv, float* const* cr) {
  __m256 acc[kRows][C];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int64_t j = 0; j < real; ++j) {
    const float* vj = v + j * ld + d0;
    __m256 vv[C];
    for (int c = 0; c < (Tail ? C - 1 : C); ++c) vv[c] = _mm256_loadu_ps(vj + 8 * c);
    if (Tail) vv[C - 1] = _mm256_maskload_ps(vj + 8 * (C - 1), last);
    for (int r = 0; r < kRows; ++r) {
      const __m256 b = _mm256_broadcast_ss(p + r * pld + j);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(b, vv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    const __m256 f = _mm256_set1_ps(inv[r]);
    for (int c = 0; c + 1 < C; ++c) _mm256_storeu_ps(cr[r] + d0 + 8 * c, _mm256_mul_ps(acc[r][c], f));
    _mm256_maskstore_ps(cr[r] + d0 + 8 * (C - 1), last, _mm256_mul_ps(acc[r][C - 1], f));
  }
}

MOEKIT_AVX2 void head_avx2(const float* q, const float* k, const float* v, int64_t ld, int64_t seq, int64_t real,
                           int64_t hd, float scale, bool round_probs, float* ctx, int64_t ldc) {
  thread_local std::vector<float> kt, vc, s;
  const int64_t ktld = round_up(real, 8);
  transpose_keys(k, ld, real, hd, ktld, kt);
  copy_values(v, ld, real, hd, vc);
  s.resize(static_cast<size_t>(kRows * ktld));
  const float* qr[kRows];
  float* cr[kRows];
  float inv[kRows];
  for (int64_t i0 = 0; i0 < seq; i0 += kRows) {
    block_rows(q, ld, ctx, ldc, seq, i0, qr, cr);
    __m256 mx[kRows];
    for (int r = 0; r < kRows; ++r) mx[r] = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    for (int64_t j0 = 0; j0 < ktld; j0 += 24) {
      const int64_t valid = real - j0;
      switch (std::min<int64_t>(3, (ktld - j0) / 8)) {
        case 1: scores_avx2<1>(qr, kt.data(), ktld, hd, j0, valid, s.data(), mx); break;
        case 2: scores_avx2<2>(qr, kt.data(), ktld, hd, j0, valid, s.data(), mx); break;
        default: scores_avx2<3>(qr, kt.data(), ktld, hd, j0, valid, s.data(), mx); break;
      }
    }
    for (int r = 0; r < kRows; ++r)
      inv[r] = exp_row_avx2(s.data() + r * ktld, real, simd::hmax(mx[r]), scale, round_probs);
    const float* p = s.data();
    for (int64_t d0 = 0; d0 < hd; d0 += 24) {
      const int64_t rest = hd - d0, vectors = std::min<int64_t>(3, (rest + 7) / 8);
      const int64_t tail = std::min<int64_t>(8, rest - 8 * (vectors - 1));
      const __m256i last = lanes_below(tail);
      if (tail < 8) {
        switch (vectors) {
          case 1: context_avx2<1, true>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
          case 2: context_avx2<2, true>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
          default: context_avx2<3, true>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
        }
      } else {
        switch (vectors) {
          case 1: context_avx2<1, false>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
          case 2: context_avx2<2, false>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
          default: context_avx2<3, false>(p, ktld, vc.data(), hd, real, d0, last, inv, cr); break;
        }
      }
    }
  }
}

}  // namespace

bool fused_attention_available() { return vector_math_isa() != VectorIsa::portable; }

void fused_attention_head(const float* q, const float* k, const float* v, int64_t ld, int64_t seq, int64_t real,
                          int64_t hd, float scale, bool round_probs, float* ctx, int64_t ldc) {
  if (seq <= 0 || hd <= 0) return;
  switch (vector_math_isa()) {
    case VectorIsa::avx512: return head_avx512(q, k, v, ld, seq, real, hd, scale, round_probs, ctx, ldc);
    case VectorIsa::avx2: return head_avx2(q, k, v, ld, seq, real, hd, scale, round_probs, ctx, ldc);
    default: fail("", "fused_attention_head: this CPU has no AVX2 + FMA (check fused_attention_available())");
  }
}

}  // namespace moekit
