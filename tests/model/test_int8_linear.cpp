// A Linear holding int8 weights (Linear::int8_weight): its forward is int8_linear, i.e. the exact
// int32 product of the quantised operands, scaled; it is inference-only and says so.
#include <catch2/catch.hpp>
#include <cmath>

#include "model/attention.h"
#include "model/error.h"
#include "model/linear.h"
#include "model/rng.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using Catch::Contains;

namespace {

Mat random_mat(Rng& rng, Eigen::Index rows, Eigen::Index cols, double scale) {
  Mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(scale * rng.normal());
  return m;
}

// A float Linear [out, in] with random weights and bias, and its int8 twin.
struct Pair {
  Linear f, q;
  QuantizedMatrix qw;
};
Pair make_pair(Eigen::Index in, Eigen::Index out, uint64_t seed) {
  Rng rng(seed);
  Pair p;
  p.f.init("enc.dense", in, out);
  p.f.weight.value = random_mat(rng, out, in, 0.2);
  p.f.bias.value = random_mat(rng, 1, out, 0.5);
  p.q = p.f;
  p.qw = quantize_int8_rows(p.f.weight.value, p.f.weight.name);
  p.q.set_int8_weight(p.qw);
  return p;
}

}  // namespace

TEST_CASE("An int8 Linear's forward is int8_linear: the exact int32 product, scaled", "[int8][linear]") {
  // 67 rows: one full 64-row chunk plus a partial one; 130 inputs: not a multiple of 4.
  Pair p = make_pair(130, 70, 11);
  REQUIRE(p.q.int8_weight);
  CHECK((p.q.in() == 130 && p.q.out() == 70));
  Rng rng(12);
  Mat x = random_mat(rng, 67, 130, 1.0);
  x.row(5).setZero();  // a zero row: scale 0, output = bias

  Mat y;
  p.q.forward(x, y, nullptr);
  Mat direct;
  int8_linear(x, p.qw, p.q.bias.value.row(0), direct);  // = compress::int8_linear (re-exported there)
  CHECK(y == direct);

  // y(i, j) = sx_i sw_j (acc(i, j) - zp_i rowsum_j) + b_j with acc the exact integer product of
  // the codes quantize_activations gives. Only float rounding separates y from that (the scale
  // product in double, one rounding to float, one for the bias): 2^-22 of the magnitude covers it.
  const QuantizedActivations qx = quantize_activations(x);
  const Int32Mat acc = int8_matmul(qx, *p.q.int8_weight);
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < 70; ++j) {
      int32_t row_sum = 0;
      for (Eigen::Index k = 0; k < 130; ++k) row_sum += p.qw.q[size_t(j * 130 + k)];
      const double product =
          double(qx.scale[size_t(i)]) * p.qw.scale[size_t(j)] * (acc(i, j) - qx.zero[size_t(i)] * row_sum);
      const double expected = product + p.q.bias.value(0, j);
      REQUIRE(std::abs(y(i, j) - expected) <= std::ldexp(std::abs(product) + std::abs(expected), -22));
    }
  CHECK(y.row(5) == p.q.bias.value);
}

TEST_CASE("An int8 Linear stays within the quantisation bound of its float twin", "[int8][linear]") {
  Pair p = make_pair(64, 24, 13);
  Rng rng(14);
  const Mat x = random_mat(rng, 9, 64, 1.0);
  Mat yf, yq;
  p.f.forward(x, yf, nullptr);
  p.q.forward(x, yq, nullptr);
  const QuantizedActivations qx = quantize_activations(x);
  const Mat wd = dequantize(p.qw);
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < 24; ++j) {
      // |x w - x^ w^| <= sum_k |x_k| |w_k - w^_k| + |x_k - x^_k| |w^_k|: the weight error at most
      // half a step (sw/2), the activation error at most one step sx (half a step, or a step where
      // the zero point's rounding clamps a range end), each plus float rounding (2^-22 of the
      // row's largest entry).
      double bound = 0;
      const double range = qx.scale[size_t(i)] * int8_max_activation();
      for (Eigen::Index k = 0; k < 64; ++k)
        bound += std::abs(x(i, k)) * (p.qw.scale[size_t(j)] / 2 + std::ldexp(p.qw.scale[size_t(j)] * 127, -22)) +
                 std::abs(wd(j, k)) * (qx.scale[size_t(i)] + std::ldexp(range, -22));
      // + 1e-5: float rounding of the two O(1) results themselves (64-term sums, 2^-24 each).
      REQUIRE(std::abs(double(yq(i, j)) - yf(i, j)) <= bound + 1e-5);
    }
}

TEST_CASE("An int8 Linear releases its float weight and refuses training", "[int8][linear]") {
  Pair p = make_pair(8, 4, 15);
  CHECK(p.q.weight.value.size() == 0);
  CHECK(p.q.weight.grad.size() == 0);
  Linear::Cache cache;
  Mat y, dx;
  REQUIRE_THROWS_WITH(p.q.forward(Mat::Ones(2, 8), y, &cache),
                      Contains("enc.dense.weight") && Contains("inference-only") && Contains("load the model for training"));
  REQUIRE_THROWS_WITH(p.q.backward(Mat::Ones(2, 4), cache, &dx), Contains("inference-only"));
  Linear other;
  other.init("other", 8, 5);
  REQUIRE_THROWS_WITH(other.set_int8_weight(p.qw), Contains("other.weight: expected [5, 8], got [4, 8]"));
}

TEST_CASE("Stacked int8 rows keep every row's values and scale", "[int8]") {
  Rng rng(21);
  const QuantizedMatrix a = quantize_int8_rows(random_mat(rng, 5, 12, 1.0)), b = quantize_int8_rows(random_mat(rng, 3, 12, 2.0));
  const PackedInt8Matrix pa = pack_int8(a), pb = pack_int8(b);
  CHECK(pa.weight->int8_values() == a.q);  // read back from oneDNN's layout
  const PackedInt8Matrix s = stack_int8_rows({&pa, &pb});
  REQUIRE(s.rows == 8);
  std::vector<int8_t> q = a.q;
  q.insert(q.end(), b.q.begin(), b.q.end());
  CHECK(s.weight->int8_values() == q);
  std::vector<float> scale = a.scale;
  scale.insert(scale.end(), b.scale.begin(), b.scale.end());
  CHECK(s.scale == scale);
  const PackedInt8Matrix narrow = pack_int8(quantize_int8_rows(random_mat(rng, 2, 11, 1.0)));
  REQUIRE_THROWS_WITH(stack_int8_rows({&pa, &narrow}), Contains("widths differ (11 vs 12)"));
}

TEST_CASE("int8 attention's stacked Q, K, V product gives the three products' result", "[int8][linear]") {
  BertConfig c = test::tiny_config();
  Attention att;
  att.init("att.", c);
  Rng rng(22);
  ParamList params;
  att.collect(params);
  for (Param* p : params) p->value = random_mat(rng, p->value.rows(), p->value.cols(), 0.4);
  for (Linear* l : {&att.query, &att.key, &att.value, &att.out}) l->set_int8_weight(quantize_int8_rows(l->weight.value));
  const Batch b = test::tiny_batch(c, {6, 4, 2}, 23);
  const Mat x = random_mat(rng, b.n_tok(), c.hidden_size, 1.0);
  Mat three, stacked;
  att.forward(x, b, three, nullptr, nullptr);
  att.pack_qkv_for_inference();
  REQUIRE(att.qkv_int8);
  att.forward(x, b, stacked, nullptr, nullptr);
  // The same integer sums and scaling per element; only the attention products' layout differs.
  CHECK((stacked - three).cwiseAbs().maxCoeff() <= 1e-5f * std::max(1.0f, three.cwiseAbs().maxCoeff()));
}
