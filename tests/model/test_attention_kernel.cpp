// The fused fp32 attention kernel (model/attention_kernel.h), every version this CPU has (AVX-512,
// AVX2), against a double-precision softmax(Q K^T * scale) V over the real keys: head sizes with
// and without vector tails, query blocks with missing rows, key counts across the vector widths,
// strided rows, and the bf16-rounded probabilities.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "model/attention_kernel.h"
#include "model/matmul.h"
#include "model/vector_math.h"

using namespace moekit;

namespace {

template <typename F>
void for_each_vector_version(F check) {
  const VectorIsa best = vector_math_best_isa();
  if (best != VectorIsa::avx512) WARN("this CPU has no AVX-512: its attention kernel is not tested here");
  if (best == VectorIsa::portable) WARN("this CPU has no AVX2 + FMA: the fused attention kernel is not used");
  for (VectorIsa isa : {VectorIsa::avx512, VectorIsa::avx2}) {
    if (static_cast<int>(isa) > static_cast<int>(best)) continue;
    set_vector_math_max_isa(isa);
    INFO(vector_isa_name(isa) << " kernel");
    check();
  }
  set_vector_math_max_isa(VectorIsa::avx512);
}

// ctx[i*hd + d] in double; with round_probs the probabilities are rounded to bf16 first, as the
// kernel does.
std::vector<double> reference(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                              int64_t ld, int64_t seq, int64_t real, int64_t hd, float scale, bool round_probs) {
  std::vector<double> ctx(static_cast<size_t>(seq * hd), 0.0);
  for (int64_t i = 0; i < seq; ++i) {
    std::vector<double> s(static_cast<size_t>(real));
    double mx = -1e300, sum = 0;
    for (int64_t j = 0; j < real; ++j) {
      double dot = 0;
      for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(q[i * ld + d]) * k[j * ld + d];
      s[j] = dot;
      mx = std::max(mx, dot);
    }
    for (double& x : s) sum += x = std::exp((x - mx) * scale);
    std::vector<float> p(s.size());
    for (size_t j = 0; j < s.size(); ++j) p[j] = static_cast<float>(s[j] / sum);
    if (round_probs) round_to_bf16(p.data(), p.size());
    for (int64_t j = 0; j < real; ++j)
      for (int64_t d = 0; d < hd; ++d) ctx[i * hd + d] += static_cast<double>(p[j]) * v[j * ld + d];
  }
  return ctx;
}

}  // namespace

TEST_CASE("attention kernel: fused softmax(Q K^T) V equals a double-precision reference", "[attention_kernel]") {
  if (vector_math_best_isa() == VectorIsa::portable) return;  // (for_each_vector_version warns)
  for_each_vector_version([] {
    std::mt19937 gen(11);
    std::normal_distribution<float> nd(0.0f, 1.5f);
    for (int64_t hd : {1, 7, 8, 20, 32, 64, 72}) {
      for (int64_t seq : {1, 3, 5, 17, 48, 70}) {
        for (int64_t real : {int64_t{1}, (seq + 1) / 2, seq}) {
          for (bool round_probs : {false, true}) {
            const int64_t ld = 3 * hd + 5;  // rows strided, as in the fused Q|K|V product
            const size_t n = static_cast<size_t>(seq * ld);
            std::vector<float> q(n), k(n), v(n);
            for (auto* m : {&q, &k, &v})
              for (float& x : *m) x = nd(gen);
            const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
            const int64_t ldc = hd + 3;
            std::vector<float> ctx(static_cast<size_t>(seq * ldc), -7.0f);
            fused_attention_head(q.data(), k.data(), v.data(), ld, seq, real, hd, scale, round_probs, ctx.data(), ldc);
            const std::vector<double> ref = reference(q, k, v, ld, seq, real, hd, scale, round_probs);
            INFO("hd " << hd << " seq " << seq << " real " << real << " round " << round_probs);
            // fp32 sums of a few hundred products (|v| ~ 1.5): 1e-5 absolute; bf16 probabilities
            // rounded on either side of a tie may differ by one bf16 step (2^-8 relative).
            const double tol = round_probs ? 2e-2 : 2e-5;
            double worst = 0;
            for (int64_t i = 0; i < seq; ++i)
              for (int64_t d = 0; d < hd; ++d) worst = std::max(worst, std::abs(ctx[i * ldc + d] - ref[i * hd + d]));
            CHECK(worst <= tol);
            bool untouched = true;  // the columns between rows are not written
            for (int64_t i = 0; i < seq; ++i)
              for (int64_t d = hd; d < ldc; ++d) untouched &= ctx[i * ldc + d] == -7.0f;
            CHECK(untouched);
          }
        }
      }
    }
  });
}

TEST_CASE("attention kernel: large scores neither overflow nor lose the padded keys' zeros", "[attention_kernel]") {
  if (vector_math_best_isa() == VectorIsa::portable) return;
  for_each_vector_version([] {
    // Scores near +-1e4: the row maximum must come from the real keys only (the padded columns of
    // the last vector hold 0, above every real score here).
    const int64_t seq = 21, real = 13, hd = 16, ld = hd;
    std::vector<float> q(static_cast<size_t>(seq * ld)), k(q.size()), v(q.size());
    for (int64_t i = 0; i < seq; ++i)
      for (int64_t d = 0; d < hd; ++d) {
        q[i * ld + d] = 25.0f;
        k[i * ld + d] = -25.0f + static_cast<float>(i) * 0.01f;
        v[i * ld + d] = static_cast<float>(i);
      }
    std::vector<float> ctx(static_cast<size_t>(seq * hd));
    fused_attention_head(q.data(), k.data(), v.data(), ld, seq, real, hd, 0.25f, false, ctx.data(), hd);
    const std::vector<double> ref = reference(q, k, v, ld, seq, real, hd, 0.25f, false);
    for (size_t i = 0; i < ctx.size(); ++i) {
      REQUIRE(std::isfinite(ctx[i]));
      CHECK(std::abs(ctx[i] - ref[i]) <= 1e-3 * (1 + std::abs(ref[i])));
    }
  });
}
