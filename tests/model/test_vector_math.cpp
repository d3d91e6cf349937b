// The element-wise kernels (model/vector_math.h), every version (AVX-512 and AVX2 where this CPU
// has them, and the portable one) against double-precision references: softmax, GELU and its derivative, over
// every tail length, far tails and underflow.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <string>
#include <random>
#include <vector>

#include "model/vector_math.h"

using namespace moekit;

namespace {

// Runs `check` with every version this CPU has (AVX-512, AVX2, portable).
template <typename F>
void for_each_version(F check) {
  const VectorIsa best = vector_math_best_isa();
  if (best != VectorIsa::avx512) WARN("this CPU has no AVX-512: its kernels are not tested here");
  if (best == VectorIsa::portable) WARN("this CPU has no AVX2 + FMA: only the portable kernels are tested");
  for (VectorIsa isa : {VectorIsa::avx512, VectorIsa::avx2, VectorIsa::portable}) {
    if (static_cast<int>(isa) > static_cast<int>(best)) continue;
    set_vector_math_max_isa(isa);
    INFO(vector_isa_name(isa) << " kernels");
    check();
  }
  set_vector_math_max_isa(VectorIsa::avx512);
}

double gelu_ref(double z) { return 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0))); }
double gelu_grad_ref(double z) {
  return 0.5 * (1.0 + std::erf(z / std::sqrt(2.0))) + z * std::exp(-0.5 * z * z) / std::sqrt(2.0 * M_PI);
}

std::vector<float> grid() {
  std::vector<float> z;
  for (int i = -12000; i <= 12000; ++i) z.push_back(static_cast<float>(i) * 1e-3f);  // [-12, 12]
  for (float v : {-1e4f, -100.0f, -30.0f, -1e-6f, 0.0f, 1e-6f, 30.0f, 100.0f, 1e4f}) z.push_back(v);
  z.push_back(1.0f);  // odd total length: a tail
  return z;
}

}  // namespace

TEST_CASE("vector_math: softmax matches a double-precision softmax for every length", "[vector_math]") {
  for_each_version([] {
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> u(-40.0f, 40.0f);
    for (int n = 1; n <= 70; ++n) {
      std::vector<float> x(static_cast<size_t>(n));
      for (float& v : x) v = u(gen);
      const float scale = 0.125f;
      std::vector<double> ref(x.size());
      double mx = -1e300, sum = 0;
      for (float v : x) mx = std::max(mx, static_cast<double>(v));
      for (size_t i = 0; i < x.size(); ++i) sum += ref[i] = std::exp((x[i] - mx) * scale);
      softmax_scaled(x.data(), n, scale);
      double total = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        INFO("n " << n << " element " << i);
        REQUIRE(std::abs(x[i] - ref[i] / sum) <= 1e-6 * (ref[i] / sum) + 1e-9);
        total += x[i];
      }
      REQUIRE(std::abs(total - 1.0) < 1e-5);
    }
  });
}

TEST_CASE("vector_math: softmax underflows to exactly 0 and keeps a dominant key at 1", "[vector_math]") {
  for_each_version([] {
    std::vector<float> x = {0.0f, -1000.0f, -200.0f};
    softmax_scaled(x.data(), 3, 1.0f);
    REQUIRE(x[0] == 1.0f);
    REQUIRE(x[1] == 0.0f);
    REQUIRE(x[2] == 0.0f);
  });
}

TEST_CASE("vector_math: GELU and its derivative match the exact-erf form", "[vector_math]") {
  for_each_version([] {
    const std::vector<float> z = grid();
    std::vector<float> y(z.size()), dz(z.size()), dy(z.size());
    for (size_t i = 0; i < z.size(); ++i) dy[i] = 1.0f + 0.25f * static_cast<float>(i % 5);
    gelu_values(z.data(), y.data(), static_cast<int64_t>(z.size()));
    gelu_derivatives(z.data(), dy.data(), dz.data(), static_cast<int64_t>(z.size()));
    for (size_t i = 0; i < z.size(); ++i) {
      INFO("z = " << z[i]);
      const double scale = std::max(1.0, std::abs(static_cast<double>(z[i])));
      REQUIRE(std::abs(y[i] - gelu_ref(z[i])) <= 4e-7 * scale);
      REQUIRE(std::abs(dz[i] - dy[i] * gelu_grad_ref(z[i])) <= 1e-6 * dy[i]);
    }
  });
}

TEST_CASE("vector_math: every tail length computes the same values as a whole vector", "[vector_math]") {
  for_each_version([] {
    const std::vector<float> z = {-3.0f, -1.5f, -0.5f, 0.0f, 0.25f, 0.75f, 1.5f, 4.0f, -2.0f, 2.5f, -0.1f};
    std::vector<float> all(z.size());
    gelu_values(z.data(), all.data(), static_cast<int64_t>(z.size()));
    for (size_t n = 1; n <= z.size(); ++n) {
      std::vector<float> part(n);
      gelu_values(z.data(), part.data(), static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i) REQUIRE(part[i] == all[i]);
    }
  });
}

TEST_CASE("vector_math: the AVX-512 GELU equals the AVX2 one bit for bit", "[vector_math]") {
  if (vector_math_best_isa() != VectorIsa::avx512) {
    WARN("this CPU has no AVX-512: nothing to compare");
    return;
  }
  const std::vector<float> z = grid();
  const int64_t n = static_cast<int64_t>(z.size());
  std::vector<float> dy(z.size());
  for (size_t i = 0; i < z.size(); ++i) dy[i] = 0.5f + static_cast<float>(i % 7) * 0.25f;
  std::vector<float> y512(z.size()), y2(z.size()), d512(z.size()), d2(z.size());
  set_vector_math_max_isa(VectorIsa::avx512);
  gelu_values(z.data(), y512.data(), n);
  gelu_derivatives(z.data(), dy.data(), d512.data(), n);
  set_vector_math_max_isa(VectorIsa::avx2);
  gelu_values(z.data(), y2.data(), n);
  gelu_derivatives(z.data(), dy.data(), d2.data(), n);
  set_vector_math_max_isa(VectorIsa::avx512);
  for (size_t i = 0; i < z.size(); ++i) {
    INFO("z = " << z[i]);
    REQUIRE(y512[i] == y2[i]);
    REQUIRE(d512[i] == d2[i]);
  }
}

// Every length from 1 to 70 (each tail of both vector widths, one or two partial sums) and BERT's
// widths, on rows with a large offset (the two-pass variance must not lose it), in place and not.
TEST_CASE("vector_math: LayerNorm rows match a double-precision LayerNorm for every length", "[vector_math]") {
  for_each_version([] {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<int64_t> lengths;
    for (int64_t h = 1; h <= 70; ++h) lengths.push_back(h);
    for (int64_t h : {128, 256, 768, 1024}) lengths.push_back(h);
    for (int64_t h : lengths)
      for (float offset : {0.0f, 1000.0f}) {
        INFO("h = " << h << ", offset " << offset);
        std::vector<float> x(static_cast<size_t>(h)), gamma(x.size()), beta(x.size());
        for (size_t k = 0; k < x.size(); ++k) {
          x[k] = offset + 3.0f * normal(rng);
          gamma[k] = 1.0f + 0.5f * normal(rng);
          beta[k] = normal(rng);
        }
        double mean = 0, var = 0;
        for (float v : x) mean += v;
        mean /= static_cast<double>(h);
        for (float v : x) var += (v - mean) * (v - mean);
        var /= static_cast<double>(h);
        const double rstd_ref = 1.0 / std::sqrt(var + 1e-12);
        std::vector<float> y(x.size()), xhat(x.size());
        const float rstd = layer_norm_row(x.data(), gamma.data(), beta.data(), 1e-12f, h, y.data(), xhat.data());
        REQUIRE(std::abs(rstd - rstd_ref) <= 1e-5 * rstd_ref);
        for (size_t k = 0; k < x.size(); ++k) {
          const double xh = (x[k] - mean) * rstd_ref;
          // Float sums of values near 1000 (ulp 6e-5) round the mean by ~1e-5, a few 1e-6 of the
          // standard deviation of 3; near 0 the error is float rounding of each step.
          const double tol = offset > 0 ? 1e-4 : 2e-6;
          REQUIRE(std::abs(xhat[k] - xh) <= tol * (1.0 + std::abs(xh)));
          REQUIRE(std::abs(y[k] - (xh * gamma[k] + beta[k])) <= tol * (1.0 + std::abs(xh * gamma[k]) + std::abs(beta[k])));
        }
        std::vector<float> in_place = x;
        layer_norm_row(in_place.data(), gamma.data(), beta.data(), 1e-12f, h, in_place.data(), nullptr);
        for (size_t k = 0; k < x.size(); ++k) REQUIRE(in_place[k] == y[k]);
      }
  });
}

// ONEDNN_MAX_CPU_ISA caps these kernels as it caps oneDNN (ctest matmul_on_avx2 sets AVX2); with
// the variable unset, the best version is what the CPU has.
TEST_CASE("vector_math: ONEDNN_MAX_CPU_ISA caps the kernels' version", "[vector_math]") {
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  const bool cpu512 = __builtin_cpu_supports("avx512f");
  const bool cpu2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (cap && std::string(cap) == "AVX2") {
    CHECK(vector_math_best_isa() == (cpu2 ? VectorIsa::avx2 : VectorIsa::portable));
  } else if (!cap) {
    CHECK(vector_math_best_isa() == (cpu512 ? VectorIsa::avx512 : cpu2 ? VectorIsa::avx2 : VectorIsa::portable));
  }
}
