// int8 per-row quantisation, fp16/bf16 rounding and the int8 linear layer (STYLE 2.7 tolerance
// policy): int8 is checked against an exact per-entry bound, not a guessed epsilon.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "compress/quantize.h"
#include "io/compact.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
using namespace moekit::compress;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// Rows spanning six orders of magnitude, one with a lone outlier, one all zero.
Mat test_weights(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  Mat w(rows, cols);
  for (Eigen::Index r = 0; r < rows; ++r)
    for (Eigen::Index c = 0; c < cols; ++c) w(r, c) = u(rng) * std::pow(10.0f, float(r % 7) - 3);
  if (rows > 2) w(1, cols / 2) = 50;
  if (rows > 3) w.row(3).setZero();
  return w;
}

double row_amax(const Mat& w, Eigen::Index r) { return double(w.row(r).cwiseAbs().maxCoeff()); }

// |w - s*q| <= s/2 from rounding to the nearest step, plus two float roundings (w/s and s*q),
// each at most amax * 2^-24; doubled for slack in the products: amax * 2^-22.
double int8_bound(double scale, double amax) { return scale / 2 + amax * std::ldexp(1.0, -22); }

}  // namespace

TEST_CASE("int8 row quantisation stays within half a step per entry", "[quantize]") {
  const Mat w = test_weights(23, 77, 1);
  const QuantizedMatrix qm = quantize_int8_rows(w);
  REQUIRE((qm.rows == 23 && qm.cols == 77 && qm.q.size() == 23u * 77 && qm.scale.size() == 23));
  const Mat back = dequantize(qm);
  for (Eigen::Index r = 0; r < w.rows(); ++r) {
    const double amax = row_amax(w, r), s = qm.scale[size_t(r)];
    CHECK(qm.scale[size_t(r)] == float(amax) / 127.0f);
    bool hit_127 = false;
    for (Eigen::Index c = 0; c < w.cols(); ++c) {
      const int q = qm.q[size_t(r * w.cols() + c)];
      REQUIRE(std::abs(q) <= 127);
      REQUIRE(std::abs(double(w(r, c)) - double(back(r, c))) <= int8_bound(s, amax));
      hit_127 |= std::abs(q) == 127;
    }
    CHECK(hit_127 == (amax > 0));  // the largest entry uses the full range
  }
  // The outlier row keeps its small entries only to within its own (large) step.
  CHECK(qm.scale[1] == 50.0f / 127.0f);
}

TEST_CASE("an all-zero row gets scale 0 and q 0, without dividing by zero", "[quantize]") {
  Mat w = Mat::Zero(3, 5);
  w(1, 2) = -2.54f;
  w(2, 0) = 1e-44f;  // amax / 127 underflows to 0: stored as a zero row
  const QuantizedMatrix qm = quantize_int8_rows(w);
  CHECK(qm.scale[0] == 0.0f);
  CHECK(qm.scale[2] == 0.0f);
  for (int c = 0; c < 5; ++c) CHECK((qm.q[size_t(c)] == 0 && qm.q[size_t(10 + c)] == 0));
  CHECK(qm.q[7] == -127);
  const Mat back = dequantize(qm);
  CHECK(back.allFinite());
  CHECK(back.row(0).isZero(0));
  CHECK(back(1, 2) == qm.scale[1] * -127.0f);
}

TEST_CASE("quantising a non-finite weight fails naming the tensor", "[quantize]") {
  Mat w = Mat::Ones(2, 3);
  w(1, 2) = NAN;
  REQUIRE_THROWS_WITH(quantize_int8_rows(w, "bert.pooler.dense.weight"),
                      Contains("bert.pooler.dense.weight") && Contains("non-finite") && Contains("row 1, column 2"));
}

TEST_CASE("fp16 and bf16 round trips stay within 2^-11 and 2^-8 relative", "[quantize]") {
  const Mat w = test_weights(7, 50, 2);
  const Mat h = round_trip_fp16(w), b = round_trip_bf16(w);
  for (Eigen::Index i = 0; i < w.size(); ++i) {
    const double a = w.data()[i];
    const double fp16_budget = std::abs(a) >= std::ldexp(1.0, -14) ? std::ldexp(std::abs(a), -11) : std::ldexp(1.0, -25);
    REQUIRE(std::abs(a - h.data()[i]) <= fp16_budget);
    REQUIRE(std::abs(a - b.data()[i]) <= std::ldexp(std::abs(a), -8));
  }
  CHECK(round_trip_fp16(h) == h);  // idempotent: already representable
}

TEST_CASE("int8 tensors convert both ways and are validated", "[quantize]") {
  const QuantizedMatrix qm = quantize_int8_rows(test_weights(5, 9, 3));
  const io::Tensor q = to_tensor(qm), s = scale_tensor(qm);
  CHECK((q.dtype == io::DType::I8 && q.shape == std::vector<int64_t>{5, 9}));
  CHECK((s.dtype == io::DType::F32 && s.shape == std::vector<int64_t>{5}));
  const QuantizedMatrix back = from_tensors(q, s, "w");
  CHECK((back.q == qm.q && back.scale == qm.scale && back.rows == 5 && back.cols == 9));

  io::Tensor short_scale = s;
  short_scale.shape = {4};
  short_scale.data.resize(16);
  REQUIRE_THROWS_WITH(from_tensors(q, short_scale, "w"), Contains("scale of w has 4 entries, expected 5"));
  io::Tensor neg = s;
  neg.data[3] |= 0x80;  // sign bit of scale[0]
  REQUIRE_THROWS_WITH(from_tensors(q, neg, "w"), Contains("must be finite and >= 0"));
  io::Tensor minus128 = q;
  minus128.data[0] = 0x80;
  REQUIRE_THROWS_WITH(from_tensors(minus128, s, "w"), Contains("-128 is outside the symmetric range"));
}

TEST_CASE("int8 weights survive a compact checkpoint and dequantise identically", "[quantize][compact]") {
  const fs::path p = moekit::test::scratch_dir("quantize") / "q.h5";
  const Mat w = test_weights(16, 40, 4);
  const QuantizedMatrix qm = quantize_int8_rows(w);
  io::CompactModel m;
  m.config_json = "{}";
  m.tensors["w"] = to_tensor(qm);
  m.scales["w"] = scale_tensor(qm);
  io::write_compact(p, m);
  const io::CompactModel back = io::read_compact(p);
  fs::remove(p);
  CHECK(dequantize(from_tensors(back.tensors.at("w"), back.scales.at("w"), "w")) == dequantize(qm));
}

TEST_CASE("int8_linear is the exact int32 product of the quantised operands", "[quantize][int8_linear]") {
  // Columns off and on the 64-byte step, outputs off the 4-row block, a zero input row.
  for (const Eigen::Index in : {1, 63, 64, 130}) {
    INFO("in = " << in);
    const Mat w = test_weights(7, in, 5);
    Mat x = test_weights(5, in, 6);
    x.row(2).setZero();
    RowVec bias = RowVec::LinSpaced(7, -1, 1);
    const QuantizedMatrix qw = quantize_int8_rows(w);
    const QuantizedActivations qx = quantize_activations(x);  // what int8_linear does to x
    const Mat wd = dequantize(qw);
    Mat xd(x.rows(), x.cols());
    for (Eigen::Index i = 0; i < x.rows(); ++i)
      for (Eigen::Index k = 0; k < in; ++k)
        xd(i, k) = qx.scale[size_t(i)] * float(qx.u[size_t(i * in + k)] - qx.zero[size_t(i)]);
    for (const bool with_bias : {false, true}) {
      Mat y;
      int8_linear(x, qw, with_bias ? bias : RowVec(), y);
      REQUIRE((y.rows() == 5 && y.cols() == 7));
      for (Eigen::Index i = 0; i < 5; ++i)
        for (Eigen::Index j = 0; j < 7; ++j) {
          double exact = with_bias ? bias(j) : 0.0, mag = std::abs(exact), bound = 0;
          for (Eigen::Index k = 0; k < in; ++k) {
            exact += double(xd(i, k)) * wd(j, k);
            mag += std::abs(double(xd(i, k)) * wd(j, k));
            // Quantisation error of x w versus x^ w^: |x| |w - w^| + |x - x^| |w^|; an activation
            // code is off by at most one step (half a step, or a step at a clamped range end).
            bound += std::abs(x(i, k)) * int8_bound(qw.scale[size_t(j)], row_amax(w, j)) +
                     std::abs(wd(j, k)) * 2 * int8_bound(qx.scale[size_t(i)], row_amax(x, i));
          }
          // Against the dequantised operands only float rounding remains (the dot is exact in
          // int32; scales multiply in double; one rounding to float, one for the bias add).
          // (The integer dot subtracts the zero point times the weight row's sum: exact too.)
          REQUIRE(std::abs(y(i, j) - exact) <= 1e-6 * mag + 1e-12);
          double reference = with_bias ? bias(j) : 0.0;
          for (Eigen::Index k = 0; k < in; ++k) reference += double(x(i, k)) * w(j, k);
          REQUIRE(std::abs(y(i, j) - reference) <= bound + 1e-6 * mag + 1e-30);
        }
    }
  }
}

TEST_CASE("int8_linear refuses mismatched shapes", "[quantize][int8_linear]") {
  const QuantizedMatrix qw = quantize_int8_rows(Mat::Ones(3, 4));
  Mat y;
  REQUIRE_THROWS_WITH(int8_linear(Mat::Ones(2, 5), qw, RowVec(), y), Contains("input has 5 columns, weight expects 4"));
  REQUIRE_THROWS_WITH(int8_linear(Mat::Ones(2, 4), qw, RowVec::Ones(2), y), Contains("bias has 2 entries, expected 3"));
}
