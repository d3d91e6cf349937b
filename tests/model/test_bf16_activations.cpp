// bf16 activations between products (model/matmul.h: Bf16Matrix, Epilogue): a packed bf16 product
// that writes bf16 with its activation in the epilogue, one that reads bf16, bf16 strided batched
// products, and whole models whose bf16 inference runs on them (FFN, attention, MoE experts).
//
// These paths run only on bf16 kernels (AMX, or MOEKIT_BF16_KERNELS=bf16 on AVX512_BF16: ctest's
// matmul_on_bf16_kernels). Elsewhere the product-level cases say so and stop, and the model-level
// cases still compare the packed and unpacked bf16 inference (then the same code).
//
// Tolerances: where both sides round the same operands, the float product's round-off (1e-5
// relative). Where a value is rounded to bf16 on one side after a different fp32 computation
// (oneDNN's GELU or summation order), one bf16 step: 2^-7 relative (8 significant bits), plus
// 1e-6 absolute for values near zero.
#include <catch2/catch.hpp>
#include <cmath>

#include "model/bert.h"
#include "model/matmul.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using test::random_mat;

namespace {

Mat rounded(Mat m) {
  round_to_bf16(m.data(), static_cast<size_t>(m.size()));
  return m;
}

float gelu_erf(float v) { return 0.5f * v * (1.0f + std::erf(v / std::sqrt(2.0f))); }
float gelu_tanh(float v) {
  return 0.5f * v * (1.0f + std::tanh(std::sqrt(2.0f / 3.14159265f) * (v + 0.044715f * v * v * v)));
}

// Elements of got further than one bf16 step from ref.
Eigen::Index beyond_one_bf16_step(const Mat& got, const Mat& ref) {
  const Mat allowed = (ref.cwiseAbs() * std::ldexp(1.0f, -7)).array() + 1e-6f;
  return ((got - ref).cwiseAbs().array() > allowed.array()).count();
}

bool bf16_kernels(const PackedWeight& w) {
  if (w.bf16_activations()) return true;
  WARN("no bf16 kernels on this CPU (" << matmul_isa().name << "): bf16 activations are not used here");
  return false;
}

}  // namespace

TEST_CASE("A bf16 product's epilogue gives the activation of the float sum, rounded once", "[matmul][bf16]") {
  Rng rng(31);
  const Mat w = random_mat(rng, 96, 80);
  const RowVec b = random_mat(rng, 1, 96);
  const PackedWeight packed(w, b, Precision::bf16);
  if (!bf16_kernels(packed)) return;
  struct Case {
    Epilogue e;
    const char* name;
    float (*f)(float);
  };
  const Case cases[] = {{Epilogue::none, "none", [](float v) { return v; }},
                        {Epilogue::gelu_erf, "gelu_erf", gelu_erf},
                        {Epilogue::gelu_tanh, "gelu_tanh", gelu_tanh},
                        {Epilogue::relu, "relu", [](float v) { return v > 0 ? v : 0.0f; }}};
  for (const Case& c : cases)
    for (Eigen::Index m : {1, 7, 256, 1000}) {
      INFO(c.name << ", " << m << " rows");
      const Mat x = random_mat(rng, m, 80);
      Mat sum;
      matmul_nt(x, w, sum, Precision::bf16);  // the same rounded operands
      sum.rowwise() += b;
      const Mat ref = rounded(sum.unaryExpr(c.f));
      Bf16Matrix y;
      packed.multiply(x, y, c.e);
      REQUIRE(y.rows() == m);
      REQUIRE(y.cols() == 96);
      CHECK(beyond_one_bf16_step(from_bf16(y), ref) == 0);
    }
}

TEST_CASE("A bf16 product reads bf16 activations as it reads rounded floats", "[matmul][bf16]") {
  Rng rng(32);
  const Mat w = random_mat(rng, 64, 48);
  const RowVec b = random_mat(rng, 1, 64);
  const PackedWeight packed(w, b, Precision::bf16);
  if (!bf16_kernels(packed)) return;
  for (Eigen::Index m : {1, 5, 300}) {
    const Mat x = random_mat(rng, m, 48);
    Bf16Matrix x16;
    to_bf16(x, x16);
    CHECK(from_bf16(x16) == rounded(x));
    Mat from_floats, from_bits;
    packed.multiply(x, from_floats);
    packed.multiply(x16, from_bits);
    CHECK((from_bits - from_floats).cwiseAbs().maxCoeff() <= 1e-5f * std::max(1.0f, from_floats.cwiseAbs().maxCoeff()));
  }
  Bf16Matrix wrong;
  wrong.resize(2, 47);
  Mat y;
  REQUIRE_THROWS_WITH(packed.multiply(wrong, y), Catch::Contains("input has 47 columns, weight expects 48"));
  const PackedWeight fp32(w, b, Precision::fp32);
  CHECK_FALSE(fp32.bf16_activations());
  REQUIRE_THROWS_WITH(fp32.multiply(wrong, y), Catch::Contains("bf16 activations need a bf16 weight"));
}

TEST_CASE("bf16 strided batched products read Q, K, V in place and write a bf16 context", "[matmul][batched][bf16]") {
  Rng rng(33);
  const PackedWeight probe(random_mat(rng, 4, 4), RowVec(), Precision::bf16);
  if (!bf16_kernels(probe)) return;
  // Attention's fused layout: [batch*seq, 3*hidden], Q | K | V, head h at columns h*hd of each.
  const int64_t batch = 3, heads = 2, seq = 5, hd = 8, hidden = heads * hd, ld = 3 * hidden;
  const Mat qkv = random_mat(rng, batch * seq, ld);
  Bf16Matrix qkv16;
  to_bf16(qkv, qkv16);
  const Mat r = rounded(qkv);
  uint16_t* base = qkv16.data();
  Mat scores(batch * heads * seq, seq);
  strided_batched_matmul({base, seq * ld, hd, ld, 1, true}, {base + hidden, seq * ld, hd, 1, ld, true},
                         {scores.data(), heads * seq * seq, seq * seq, seq, 1}, batch, heads, seq, hd, seq);
  Bf16Matrix s16, ctx;
  to_bf16(scores, s16);
  ctx.resize(batch * seq, hidden);
  strided_batched_matmul({s16.data(), heads * seq * seq, seq * seq, seq, 1, true},
                         {base + 2 * hidden, seq * ld, hd, ld, 1, true}, {ctx.data(), seq * hidden, hd, hidden, 1, true},
                         batch, heads, seq, seq, hd);
  const Mat ctxf = from_bf16(ctx);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      INFO("sequence " << b << ", head " << h);
      const Mat q = r.block(b * seq, h * hd, seq, hd), k = r.block(b * seq, hidden + h * hd, seq, hd),
                v = r.block(b * seq, 2 * hidden + h * hd, seq, hd);
      const Mat s_ref = q * k.transpose();
      const Mat got = scores.middleRows((b * heads + h) * seq, seq);
      CHECK((got - s_ref).cwiseAbs().maxCoeff() <= 1e-5f * std::max(1.0f, s_ref.cwiseAbs().maxCoeff()));
      const Mat c_ref = rounded(rounded(got) * v);
      CHECK(beyond_one_bf16_step(ctxf.block(b * seq, h * hd, seq, hd), c_ref) == 0);
    }
}

TEST_CASE("bf16 inference on packed weights agrees with unpacked bf16 inference, dense and MoE", "[bf16][model]") {
  for (const bool moe : {false, true})
    for (const Activation act : {Activation::gelu, Activation::gelu_new, Activation::relu}) {
      INFO((moe ? "MoE" : "dense") << ", " << activation_name(act) << ", bf16 activations "
                                   << (matmul_isa().bf16_native ? "on" : "off (no bf16 kernels)"));
      BertConfig c = test::tiny_config(act);
      if (moe) {
        MoeConfig m;
        m.n_experts = 2;
        m.expert_size = 16;
        m.router = "gate";
        m.top_k = 1;
        m.layers = {0, 1};
        c.moe = m;
      }
      BertModel model(c);
      test::randomize(model, 41, 0.3);
      model.set_precision(Precision::bf16);
      const Batch b = test::tiny_batch(c, {9, 6, 3}, 42);
      const Outputs plain = model.forward(b, nullptr, nullptr);
      model.pack_for_inference();
      const Outputs packed = model.forward(b, nullptr, nullptr);
      REQUIRE(packed.logits.allFinite());
      // The packed path rounds each tensor where the unpacked one does; only oneDNN's activation
      // and summation order differ before a rounding, so a few bf16 steps reach the logits.
      const float scale = std::max(1.0f, plain.logits.cwiseAbs().maxCoeff());
      CHECK((packed.logits - plain.logits).cwiseAbs().maxCoeff() <= 0.03f * scale);
    }
}
