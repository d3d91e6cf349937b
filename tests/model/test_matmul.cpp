// The matmul interface (model/matmul.h) on oneDNN: fp32 products against a double-precision loop,
// bf16 products against the fp32 product of the bf16-rounded operands (the contract: bf16
// operands, fp32 accumulation), pre-packed weights against the plain product at every row count,
// and a bf16 Linear's forward and backward against fp32 within bf16's documented tolerance.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "model/attention.h"
#include "model/linear.h"
#include "model/matmul.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using test::random_mat;

namespace {

MatD to_double(MatRef m) { return m.cast<double>(); }

// Max |a - b| over max(1, max |b|): float products of K terms stay within K * 2^-24 relative.
double rel_diff(const Mat& a, const MatD& b) {
  const double scale = std::max(1.0, b.cwiseAbs().maxCoeff());
  return (a.cast<double>() - b).cwiseAbs().maxCoeff() / scale;
}

Mat bf16_rounded(Mat m) {
  round_to_bf16(m.data(), static_cast<size_t>(m.size()));
  return m;
}

struct Shape {
  Eigen::Index m, k, n;
};
// Odd sizes (no vector width divides them), a single row, and the model's real shapes.
const Shape kShapes[] = {{1, 1, 1}, {1, 64, 32}, {7, 13, 5}, {67, 130, 65}, {256, 256, 1024}, {300, 1024, 256}};

// An attention block of config c with normal random weights (standard deviation 0.4).
Attention random_attention(const BertConfig& c, Rng& rng) {
  Attention att;
  att.init("att.", c);
  ParamList params;
  att.collect(params);
  for (Param* p : params) p->value = random_mat(rng, p->value.rows(), p->value.cols(), 0.4);
  return att;
}

}  // namespace

TEST_CASE("fp32 products equal a double-precision product to float round-off", "[matmul]") {
  INFO("oneDNN ISA " << matmul_isa().name);
  Rng rng(1);
  for (const Shape& s : kShapes) {
    INFO("m " << s.m << " k " << s.k << " n " << s.n);
    const Mat x = random_mat(rng, s.m, s.k), w = random_mat(rng, s.n, s.k), w2 = random_mat(rng, s.k, s.n);
    Mat y;
    matmul_nt(x, w, y);
    CHECK(rel_diff(y, to_double(x) * to_double(w).transpose()) < 1e-5);
    matmul_nn(x, w2, y);
    CHECK(rel_diff(y, to_double(x) * to_double(w2)) < 1e-5);
    const Mat a = random_mat(rng, s.m, s.n);
    Mat g = random_mat(rng, s.n, s.k);
    const MatD expected = to_double(g) + to_double(a).transpose() * to_double(x);
    matmul_tn_acc(a, x, g);  // accumulates
    CHECK(rel_diff(g, expected) < 1e-5);
  }
}

TEST_CASE("Products read strided blocks and empty inner dimensions", "[matmul]") {
  Rng rng(2);
  const Mat big = random_mat(rng, 40, 50), w = random_mat(rng, 9, 20);
  const auto block = big.block(3, 5, 30, 20);  // row stride 50, not 20
  Mat y;
  matmul_nt(block, w, y);
  CHECK(rel_diff(y, to_double(Mat(block)) * to_double(w).transpose()) < 1e-5);
  matmul_nt(Mat(4, 0), Mat(3, 0), y);
  CHECK((y.rows() == 4 && y.cols() == 3 && y.isZero()));
  REQUIRE_THROWS_WITH(matmul_nt(Mat(4, 5), Mat(3, 6), y), Catch::Contains("inner dimensions differ"));
}

TEST_CASE("bf16 products are fp32 products of bf16-rounded operands", "[matmul][bf16]") {
  INFO("oneDNN ISA " << matmul_isa().name << ", bf16 " << (matmul_isa().bf16_native ? "native" : "emulated"));
  Rng rng(3);
  for (const Shape& s : kShapes) {
    INFO("m " << s.m << " k " << s.k << " n " << s.n);
    const Mat x = random_mat(rng, s.m, s.k), w = random_mat(rng, s.n, s.k);
    Mat y;
    matmul_nt(x, w, y, Precision::bf16);
    // Products of bf16 values are exact in fp32: only the summation order separates the two.
    CHECK(rel_diff(y, to_double(bf16_rounded(x)) * to_double(bf16_rounded(w)).transpose()) < 1e-5);
    // Against the unrounded operands: each factor is off by at most 2^-9 relative, so entries stay
    // within 2^-8 * sum_k |x_k w_k|; with random signs far less (3e-2 of the largest entry here).
    const MatD exact = to_double(x) * to_double(w).transpose();
    const MatD bound = to_double(x).cwiseAbs() * to_double(w).cwiseAbs().transpose() * std::ldexp(1.0, -8);
    CHECK(((y.cast<double>() - exact).cwiseAbs().array() <= bound.array() + 1e-6).all());
    CHECK(rel_diff(y, exact) > 0);  // bf16 really ran (a rounding error exists) ...
    if (s.k >= 64) CHECK(rel_diff(y, exact) < 3e-2);  // ... and stays small
  }
}

TEST_CASE("Batched products equal one product per matrix, every transpose, fp32 and bf16", "[matmul][batched]") {
  Rng rng(9);
  const Eigen::Index batch = 6, m = 11, k = 8, n = 13;
  for (const Precision p : {Precision::fp32, Precision::bf16}) {
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        INFO(precision_name(p) << " ta " << ta << " tb " << tb);
        // each matrix contiguous and row-major before its op: [m, k] or, transposed, [k, m]
        const Mat a = random_mat(rng, batch * (ta ? k : m), ta ? m : k);
        const Mat b = random_mat(rng, batch * (tb ? n : k), tb ? k : n);
        Mat c(batch * m, n);
        batched_matmul(a.data(), ta, b.data(), tb, c.data(), batch, m, k, n, p);
        for (Eigen::Index i = 0; i < batch; ++i) {
          const Mat ai = a.middleRows(i * (ta ? k : m), ta ? k : m), bi = b.middleRows(i * (tb ? n : k), tb ? n : k);
          Mat expected(m, n);
          matmul(ai, ta, bi, tb, expected, false, p);
          CHECK((c.middleRows(i * m, m) - expected).cwiseAbs().maxCoeff() < 1e-5);
        }
      }
  }
  Mat c = Mat::Constant(2 * 3, 4, 7.0f);
  batched_matmul(nullptr, false, nullptr, false, c.data(), 2, 3, 0, 4);  // empty inner dimension
  CHECK(c.isZero());
}

TEST_CASE("Strided batched products read and write (sequence, head) blocks in place", "[matmul][batched]") {
  // Attention's layout: Q, K, V [batch*seq, heads*hd]; block (b, h) = rows b*seq.., columns h*hd..
  Rng rng(12);
  const int64_t batch = 3, heads = 2, seq = 5, hd = 4, hidden = heads * hd;
  const Mat q = random_mat(rng, batch * seq, hidden), k = random_mat(rng, batch * seq, hidden),
            v = random_mat(rng, batch * seq, hidden);
  Mat scores(batch * heads * seq, seq), ctx = Mat::Constant(batch * seq, hidden, 9.0f);
  auto cq = const_cast<float*>(q.data()), ck = const_cast<float*>(k.data()), cv = const_cast<float*>(v.data());
  const StridedMatrices q_in{cq, seq * hidden, hd, hidden, 1}, k_t{ck, seq * hidden, hd, 1, hidden},
      v_in{cv, seq * hidden, hd, hidden, 1}, s_out{scores.data(), heads * seq * seq, seq * seq, seq, 1},
      ctx_out{ctx.data(), seq * hidden, hd, hidden, 1};
  strided_batched_matmul(q_in, k_t, s_out, batch, heads, seq, hd, seq);
  strided_batched_matmul(s_out, v_in, ctx_out, batch, heads, seq, seq, hd);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      const Mat qb = q.block(b * seq, h * hd, seq, hd), kb = k.block(b * seq, h * hd, seq, hd),
                vb = v.block(b * seq, h * hd, seq, hd);
      const Mat s_ref = qb * kb.transpose();
      CHECK((scores.middleRows((b * heads + h) * seq, seq) - s_ref).cwiseAbs().maxCoeff() < 1e-5);
      CHECK((ctx.block(b * seq, h * hd, seq, hd) - s_ref * vb).cwiseAbs().maxCoeff() < 1e-4);
    }
}

TEST_CASE("Packed weights give the plain product with the bias, at every row count", "[matmul]") {
  Rng rng(4);
  const Mat w = random_mat(rng, 96, 80);
  const RowVec b = random_mat(rng, 1, 96);
  for (Precision p : {Precision::fp32, Precision::bf16}) {
    const PackedWeight packed(w, b, p);
    for (Eigen::Index m : {1, 2, 7, 64, 255, 256, 1000}) {
      INFO(precision_name(p) << ", " << m << " rows");
      const Mat x = random_mat(rng, m, 80);
      Mat y, ref;
      packed.multiply(x, y);
      matmul_nt(x, w, ref, p);
      ref.rowwise() += b;
      CHECK(rel_diff(y, to_double(ref)) < 1e-5);
    }
  }
  const PackedWeight no_bias(w, RowVec(), Precision::fp32);
  Mat y;
  no_bias.multiply(Mat::Zero(3, 80), y);
  CHECK(y.isZero());
  REQUIRE_THROWS_WITH(no_bias.multiply(Mat::Zero(3, 81), y), Catch::Contains("input has 81 columns, weight expects 80"));
}

// MoE inference runs one expert's packed weight on several row chunks from two threads at once.
// On AVX-512 (brgemm kernels), oneDNN's library-managed scratchpad was shared between the two
// executions and the results were garbage, sometimes NaN (Intel Xeon, 2026-12-02).
TEST_CASE("Products from several threads at once give every row of every product", "[matmul][threads]") {
  Rng rng(12);
  const Mat w = random_mat(rng, 768, 768);
  const RowVec b = random_mat(rng, 1, 768);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  for (Precision p : {Precision::fp32, Precision::bf16}) {
    const PackedWeight packed(w, b, p);
    std::vector<Mat> xs, packed_out(8), plain_out(8);
    for (Eigen::Index m : {64, 32, 64, 7, 64, 256, 64, 1}) xs.push_back(random_mat(rng, m, 768));
    for (int round = 0; round < 3; ++round) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(2)
      for (int i = 0; i < 8; ++i) {
        const size_t j = static_cast<size_t>(i);
        packed_out[j] = Mat::Constant(xs[j].rows(), 768, std::nanf(""));
        packed.multiply(xs[j], packed_out[j]);
      }
#pragma omp parallel for schedule(dynamic, 1) num_threads(2)
      for (int i = 0; i < 8; ++i)  // a training forward's products, from both threads
        matmul_nt(xs[static_cast<size_t>(i)], w, plain_out[static_cast<size_t>(i)], p);
      for (size_t i = 0; i < xs.size(); ++i) {
        INFO(precision_name(p) << ", product " << i << " (" << xs[i].rows() << " rows), round " << round);
        Mat ref;
        matmul_nt(xs[i], w, ref, p);
        CHECK(rel_diff(plain_out[i], to_double(ref)) < 1e-5);
        ref.rowwise() += b;
        REQUIRE(packed_out[i].allFinite());
        CHECK(rel_diff(packed_out[i], to_double(ref)) < 1e-5);
      }
    }
  }
  omp_set_num_threads(threads);
}

TEST_CASE("Products agree at one and two threads to float round-off", "[matmul][threads]") {
  Rng rng(5);
  const Mat x = random_mat(rng, 300, 256), w = random_mat(rng, 512, 256);
  const int threads = omp_get_max_threads();
  for (Precision p : {Precision::fp32, Precision::bf16}) {
    Mat y1, y2;
    omp_set_num_threads(1);
    matmul_nt(x, w, y1, p);
    omp_set_num_threads(2);
    matmul_nt(x, w, y2, p);
    CHECK(rel_diff(y2, to_double(y1)) < 1e-5);
  }
  omp_set_num_threads(threads);
}

TEST_CASE("A bf16 Linear trains like an fp32 one within bf16 rounding", "[matmul][bf16][linear]") {
  Rng rng(6);
  Linear f, h;
  f.init("l", 64, 48);
  f.weight.value = random_mat(rng, 48, 64, 0.2);
  f.bias.value = random_mat(rng, 1, 48, 0.5);
  h = f;
  h.set_precision(Precision::bf16);
  const Mat x = random_mat(rng, 33, 64), dy = random_mat(rng, 33, 48);
  Linear::Cache cf, ch;
  Mat yf, yh, dxf, dxh;
  f.forward(x, yf, &cf);
  h.forward(x, yh, &ch);
  f.backward(dy, cf, &dxf);
  h.backward(dy, ch, &dxh);
  // 64- or 33-term sums of O(0.2..1) products, each factor within 2^-9: a few 1e-2 at most.
  CHECK(rel_diff(yh, to_double(yf)) < 2e-2);
  CHECK(rel_diff(dxh, to_double(dxf)) < 2e-2);
  CHECK(rel_diff(h.weight.grad, to_double(f.weight.grad)) < 2e-2);
  CHECK(h.bias.grad == f.bias.grad);  // the bias gradient is a plain fp32 sum
  CHECK(yh != yf);                     // and bf16 really ran
  // The master weights stay fp32: nothing was rounded in place.
  CHECK(h.weight.value == f.weight.value);
}

TEST_CASE("A packed Linear runs the pack for inference and drops it when trained", "[matmul][linear]") {
  Rng rng(7);
  Linear l;
  l.init("l", 32, 16);
  l.weight.value = random_mat(rng, 16, 32);
  l.bias.value = random_mat(rng, 1, 16);
  const Mat x = random_mat(rng, 5, 32);
  Mat plain, packed;
  l.forward(x, plain, nullptr);
  l.pack_for_inference();
  REQUIRE(l.packed);
  l.forward(x, packed, nullptr);
  CHECK(rel_diff(packed, to_double(plain)) < 1e-6);
  Linear::Cache cache;
  Mat y;
  l.forward(x, y, &cache);
  l.backward(Mat::Ones(5, 16), cache, nullptr);
  CHECK_FALSE(l.packed);  // the weights may change now
  l.pack_for_inference();
  l.set_precision(Precision::bf16);
  CHECK_FALSE(l.packed);  // a pack at another precision is not used
}

TEST_CASE("Attention's fused Q, K, V pack gives the unfused result and is dropped when trained", "[matmul][linear]") {
  BertConfig c = test::tiny_config();
  Rng rng(3);
  Attention att = random_attention(c, rng);
  const Batch b = test::tiny_batch(c, {6, 4, 2}, 11);
  const Mat x = random_mat(rng, b.n_tok(), c.hidden_size);
  for (Precision p : {Precision::fp32, Precision::bf16}) {
    INFO(precision_name(p));
    for (Linear* l : {&att.query, &att.key, &att.value, &att.out}) l->set_precision(p);
    att.qkv_packed.reset();
    Mat plain, fused;
    att.forward(x, b, plain, nullptr, nullptr);
    att.query.pack_for_inference();
    att.pack_qkv_for_inference();
    REQUIRE(att.qkv_packed);
    CHECK_FALSE(att.query.packed);  // the fused pack replaces the query's own
    att.forward(x, b, fused, nullptr, nullptr);
    // fp32: one product's sums in another order; bf16: the same rounded operands.
    CHECK(rel_diff(fused, to_double(plain)) < (p == Precision::fp32 ? 1e-6 : 1e-3));
    Attention::Cache cache;
    Mat y, dx;
    att.forward(x, b, y, &cache, nullptr);
    att.backward(Mat::Ones(y.rows(), y.cols()), b, cache, dx);
    CHECK_FALSE(att.qkv_packed);  // the weights may change now
  }
}

// bf16 inference without bf16 kernels rounds Q, K, V and the probabilities in place and runs
// fp32 products on them; the training forward rounds copies of the same tensors for its batched
// products. Products of bf16 values are exact in fp32, so only summation order may differ: a
// tensor left unrounded would show as ~1e-3 (bf16's 2^-8 relative step), far above the bound.
// (With bf16 kernels, unpacked inference runs the training forward's products, so this holds too.)
TEST_CASE("bf16 attention inference equals the training forward's bf16 products", "[matmul][bf16]") {
  BertConfig c = test::tiny_config();
  Rng rng(5);
  Attention att = random_attention(c, rng);
  for (Linear* l : {&att.query, &att.key, &att.value, &att.out}) l->set_precision(Precision::bf16);
  const Batch b = test::tiny_batch(c, {6, 4, 2}, 12);
  const Mat x = random_mat(rng, b.n_tok(), c.hidden_size);
  Mat inference, training;
  Attention::Cache cache;
  att.forward(x, b, training, &cache, nullptr);
  att.forward(x, b, inference, nullptr, nullptr);
  INFO("bf16 kernels " << (matmul_isa().bf16_native ? "on" : "off"));
  CHECK(rel_diff(inference, to_double(training)) < 2e-5);
}

// Packed inference runs attention per (sequence, head-group) unit on each thread: heads split
// into groups when the batch has fewer than two sequences per thread, whole sequences otherwise.
// Both layouts must give the training forward's result at fp32 and bf16, with padding.
TEST_CASE("Packed attention inference equals the training forward for small and large batches", "[matmul][bf16]") {
  BertConfig c = test::tiny_config();
  for (Precision p : {Precision::fp32, Precision::bf16}) {
    for (const std::vector<int64_t>& lengths : {std::vector<int64_t>{5}, {6, 4, 2}, {6, 4, 2, 5, 3, 6, 1, 6, 2}}) {
      Rng rng(7);
      Attention att = random_attention(c, rng);
      for (Linear* l : {&att.query, &att.key, &att.value, &att.out}) l->set_precision(p);
      const Batch b = test::tiny_batch(c, lengths, 13);
      const Mat x = random_mat(rng, b.n_tok(), c.hidden_size);
      Mat inference, training;
      Attention::Cache cache;
      att.forward(x, b, training, &cache, nullptr);
      att.out.pack_for_inference();
      att.pack_qkv_for_inference();
      att.forward(x, b, inference, nullptr, nullptr);
      INFO((p == Precision::fp32 ? "fp32" : "bf16") << ", " << lengths.size() << " sequences, bf16 kernels "
                                                     << (matmul_isa().bf16_native ? "on" : "off"));
      CHECK(rel_diff(inference, to_double(training)) < 2e-5);
    }
  }
}
