// The int8 kernel (model/int8_matmul.h on oneDNN's u8 x s8 -> s32 matmul): its int32 sums equal a
// plain loop exactly over the whole code range this CPU allows (int8_max_activation()), outputs do
// not depend on the thread count, and activations quantise as the header says. Integer sums are
// exact, so those comparisons are ==.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "model/activation.h"
#include "model/int8_matmul.h"
#include "model/vector_math.h"

using namespace moekit;

namespace {

// int8 values over the whole symmetric range, -127 and 127 included, with per-row scales.
QuantizedMatrix random_int8(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> v(-127, 127);
  QuantizedMatrix m;
  m.rows = rows;
  m.cols = cols;
  for (Eigen::Index i = 0; i < rows * cols; ++i) m.q.push_back(static_cast<int8_t>(v(rng)));
  for (Eigen::Index r = 0; r < rows; ++r) m.scale.push_back(0.01f * float(r + 1));
  return m;
}

// Activation codes over 0..int8_max_activation(), both ends included.
QuantizedActivations random_codes(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> v(0, int8_max_activation());
  QuantizedActivations a;
  a.rows = rows;
  a.cols = cols;
  for (Eigen::Index i = 0; i < rows * cols; ++i) a.u.push_back(static_cast<uint8_t>(v(rng)));
  a.scale.assign(size_t(rows), 1.0f);
  a.zero.assign(size_t(rows), 0);
  return a;
}

Int32Mat plain_product(const QuantizedActivations& x, const QuantizedMatrix& w) {
  Int32Mat acc(x.rows, w.rows);
  for (Eigen::Index i = 0; i < x.rows; ++i)
    for (Eigen::Index j = 0; j < w.rows; ++j) {
      int32_t s = 0;
      for (Eigen::Index k = 0; k < x.cols; ++k) s += int32_t(x.u[size_t(i * x.cols + k)]) * w.q[size_t(j * w.cols + k)];
      acc(i, j) = s;
    }
  return acc;
}

struct Shape {
  Eigen::Index n, in, out;
};
// Odd sizes off every vector width and block, and this project's real shapes.
const Shape kShapes[] = {{1, 1, 1}, {5, 3, 7}, {67, 130, 65}, {130, 64, 64}, {64, 256, 256}, {9, 1024, 256}};

}  // namespace

TEST_CASE("int8 kernel: sums equal a plain loop exactly", "[int8]") {
  INFO("oneDNN ISA " << matmul_isa().name << ", activation codes 0.." << int8_max_activation());
  for (const Shape& s : kShapes) {
    INFO("n " << s.n << " in " << s.in << " out " << s.out);
    const QuantizedActivations x = random_codes(s.n, s.in, 1);
    const QuantizedMatrix w = random_int8(s.out, s.in, 2);
    CHECK(int8_matmul(x, pack_int8(w)) == plain_product(x, w));
  }
}

TEST_CASE("int8 kernel: the extreme sums fit int32 and stay exact", "[int8]") {
  // The largest code against +-127 weights over the longest rows the project uses: the case
  // where a 16-bit intermediate would saturate.
  const Eigen::Index in = 4096;
  QuantizedActivations x = random_codes(2, in, 3);
  std::fill(x.u.begin(), x.u.end(), static_cast<uint8_t>(int8_max_activation()));
  QuantizedMatrix w = random_int8(3, in, 4);
  std::fill(w.q.begin(), w.q.begin() + in, int8_t{127});
  std::fill(w.q.begin() + in, w.q.begin() + 2 * in, int8_t{-127});
  CHECK(int8_matmul(x, pack_int8(w)) == plain_product(x, w));
  x.u[0] = static_cast<uint8_t>(int8_max_activation() + 1);
  if (int8_max_activation() < 255) REQUIRE_THROWS_WITH(int8_matmul(x, pack_int8(w)), Catch::Contains("exact range"));
}

TEST_CASE("int8 activations: asymmetric per-row codes within half a step", "[int8]") {
  std::mt19937 rng(7);
  std::normal_distribution<float> g;
  Mat x(9, 50);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = g(rng);
  x.row(1) = x.row(1).cwiseAbs();        // all >= 0: zero point 0
  x.row(2) = -x.row(2).cwiseAbs();       // all <= 0: zero point at the top code
  x.row(3).setZero();                    // scale 0
  x.row(4) = x.row(4).array() * 0.17f - 0.17f;  // GELU-like offset
  for (int max_code : {127, 255}) {
    const QuantizedActivations a = quantize_activations(x, max_code);
    CHECK(a.zero[1] == 0);
    CHECK(a.zero[2] == max_code);
    CHECK(a.scale[3] == 0.0f);
    for (Eigen::Index i = 0; i < x.rows(); ++i)
      for (Eigen::Index k = 0; k < x.cols(); ++k) {
        const int u = a.u[size_t(i * x.cols() + k)];
        REQUIRE(u <= max_code);
        const float back = a.scale[size_t(i)] * float(u - a.zero[size_t(i)]);
        // Half a step, plus the zero point's own rounding at the range ends (clamped codes).
        REQUIRE(std::abs(back - x(i, k)) <= a.scale[size_t(i)] * 1.0001f + 1e-7f);
      }
  }
}

TEST_CASE("int8_linear gives the same floats at any thread count", "[int8][threads]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  Mat x(131, 96);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = g(rng);
  Mat w(70, 96);
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = 0.1f * g(rng);
  const Mat bias = RowVec::LinSpaced(70, -1, 1);
  const PackedInt8Matrix packed = pack_int8(quantize_int8_rows(w));
  const int threads = omp_get_max_threads();
  Mat ref, y;
  omp_set_num_threads(1);
  int8_linear(x, packed, bias, ref);
  omp_set_num_threads(2);
  int8_linear(x, packed, bias, y);
  CHECK(y == ref);
  omp_set_num_threads(threads);
}

TEST_CASE("int8_linear: a non-finite input row gives NaN outputs in that row only", "[int8]") {
  Mat x = Mat::Ones(6, 8);
  x(2, 3) = INFINITY;
  x(4, 0) = NAN;
  const PackedInt8Matrix packed = pack_int8(quantize_int8_rows(Mat::Ones(3, 8)));
  Mat y;
  int8_linear(x, packed, Mat(), y);
  for (Eigen::Index i = 0; i < 6; ++i) {
    INFO("row " << i);
    if (i == 2 || i == 4) {
      CHECK(y.row(i).array().isNaN().all());
    } else {
      CHECK(y.row(i).isApprox(Mat::Constant(1, 3, 8.0f)));
    }
  }
}

TEST_CASE("int8 kernel refuses mismatched shapes", "[int8]") {
  const PackedInt8Matrix packed = pack_int8(quantize_int8_rows(Mat::Ones(3, 4)));
  Mat y;
  REQUIRE_THROWS_WITH(int8_linear(Mat::Ones(2, 5), packed, Mat(), y), Catch::Contains("input has 5 columns, weight expects 4"));
  REQUIRE_THROWS_WITH(int8_linear(Mat::Ones(2, 4), packed, Mat::Ones(1, 2), y), Catch::Contains("bias has 2 entries, expected 3"));
}

TEST_CASE("int8_linear_activated equals the activation of int8_linear, quantised, code for code", "[int8]") {
  std::mt19937 rng(8);
  std::normal_distribution<float> g;
  for (const Activation act : {Activation::gelu, Activation::gelu_new, Activation::relu})
    for (const Eigen::Index rows : {1, 7, 300}) {
      INFO(activation_name(act) << ", " << rows << " rows");
      Mat x(rows, 64), w(96, 64);
      for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = g(rng);
      for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = 0.2f * g(rng);
      const Mat bias = RowVec::LinSpaced(96, -0.5, 0.5);
      const PackedInt8Matrix packed = pack_int8(quantize_int8_rows(w));
      const QuantizedActivations xq = quantize_activations(x);
      Mat z, a;
      int8_linear(xq, packed, bias, z);
      activation_forward(act, z, a);
      const QuantizedActivations ref = quantize_activations(a);
      const QuantizedActivations got = int8_linear_activated(xq, packed, bias, act);
      CHECK(got.rows == rows);
      CHECK(got.cols == 96);
      CHECK(got.u == ref.u);  // the same arithmetic per element: exact
      CHECK(got.scale == ref.scale);
      CHECK(got.zero == ref.zero);
    }
}

TEST_CASE("int8 activation codes are the same on the AVX-512, AVX2 and portable loops", "[int8][vector_math]") {
  std::mt19937 rng(9);
  std::normal_distribution<float> g;
  Mat x(37, 1043);  // a row length no vector width divides
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = 3.0f * g(rng);
  x.row(3).setZero();
  x.row(4) = x.row(4).cwiseAbs();  // zero point 0
  const VectorIsa best = vector_math_best_isa();
  const QuantizedActivations ref = quantize_activations(x);
  for (VectorIsa isa : {VectorIsa::avx2, VectorIsa::portable}) {
    INFO(vector_isa_name(isa) << " vs " << vector_isa_name(best));
    set_vector_math_max_isa(isa);
    const QuantizedActivations got = quantize_activations(x);
    CHECK(got.u == ref.u);
    CHECK(got.scale == ref.scale);
    CHECK(got.zero == ref.zero);
  }
  set_vector_math_max_isa(best);
}

// Batches of many rows run as row chunks, each product and its epilogue on one thread (1024
// outputs: 32-row chunks; 167 rows: five full chunks and a partial one). The chunks' sums must be
// the one product's, exactly, at one and two threads, and the activated form must agree too.
TEST_CASE("int8 products in row chunks equal one product", "[int8][threads]") {
  std::mt19937 rng(9);
  std::normal_distribution<float> g;
  Mat x(167, 64), w(1024, 64);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = g(rng);
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = 0.2f * g(rng);
  const Mat bias = RowVec::LinSpaced(1024, -0.5, 0.5);
  const PackedInt8Matrix packed = pack_int8(quantize_int8_rows(w));
  const QuantizedActivations xq = quantize_activations(x);
  const Int32Mat acc = int8_matmul(xq, packed);  // one product
  const int threads = omp_get_max_threads();
  for (int t : {1, 2}) {
    INFO(t << " threads");
    omp_set_num_threads(t);
    Mat y;
    int8_linear(xq, packed, bias, y);
    double worst = 0;
    for (Eigen::Index i = 0; i < y.rows(); ++i)
      for (Eigen::Index j = 0; j < y.cols(); ++j) {
        const double expected = double(xq.scale[size_t(i)]) * packed.scale[size_t(j)] *
                                    (acc(i, j) - double(xq.zero[size_t(i)]) * packed.row_sum[size_t(j)]) +
                                bias(0, j);
        worst = std::max(worst, std::abs(y(i, j) - expected) / std::max(1.0, std::abs(expected)));
      }
    CHECK(worst < 1e-6);  // the float epilogue's few roundings; a wrong chunk offset is O(1)
    Mat a;
    activation_forward(Activation::gelu, y, a);
    const QuantizedActivations ref = quantize_activations(a);
    const QuantizedActivations got = int8_linear_activated(xq, packed, bias, Activation::gelu);
    CHECK(got.u == ref.u);
    CHECK(got.scale == ref.scale);
  }
  omp_set_num_threads(threads);
}
