// The fused fp32 expert kernel (model/expert_kernel.h), every version this CPU has (AVX-512,
// AVX2): against a double-precision LN(x + W2 act(W1 x + b1) + b2) * scale for every activation,
// widths that use one to four vectors and several column spans, blocks with missing rows, strided
// rows in any order, rows it must not touch; then inside MoeFFN, against the oneDNN path it
// replaces (tied shared FFN, plain experts, a gate's weights, padding), and when it must not apply.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "model/activation.h"
#include "model/expert_kernel.h"
#include "model/expert_kernel_int8.h"
#include "model/int8_matmul.h"
#include "model/moe_ffn.h"
#include "model/vector_math.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

template <typename F>
void for_each_vector_version(F check) {
  const VectorIsa best = vector_math_best_isa();
  if (best != VectorIsa::avx512) WARN("this CPU has no AVX-512: its expert kernel is not tested here");
  if (best == VectorIsa::portable) WARN("this CPU has no AVX2 + FMA: the fused expert kernel is not used");
  for (VectorIsa isa : {VectorIsa::avx512, VectorIsa::avx2}) {
    if (static_cast<int>(isa) > static_cast<int>(best)) continue;
    set_vector_math_max_isa(isa);
    INFO(vector_isa_name(isa) << " kernel");
    check();
  }
  set_vector_math_max_isa(VectorIsa::avx512);
}

double act_double(Activation act, double z) {
  switch (act) {
    case Activation::gelu: return 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
    case Activation::gelu_new:
      return 0.5 * z * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (z + 0.044715 * z * z * z)));
    case Activation::relu: return z > 0 ? z : 0.0;
  }
  return 0;
}

// One row through the expert in double.
std::vector<double> reference_row(const float* x, const Mat& w1, const Mat& b1, const Mat& w2, const Mat& b2,
                                  const Mat& gamma, const Mat& beta, float eps, Activation act) {
  const Eigen::Index h = w1.cols(), d = w1.rows();
  std::vector<double> a(static_cast<size_t>(d)), o(static_cast<size_t>(h));
  for (Eigen::Index j = 0; j < d; ++j) {
    double z = b1(0, j);
    for (Eigen::Index k = 0; k < h; ++k) z += static_cast<double>(w1(j, k)) * x[k];
    a[static_cast<size_t>(j)] = act_double(act, z);
  }
  double mean = 0;
  for (Eigen::Index i = 0; i < h; ++i) {
    double s = static_cast<double>(b2(0, i)) + x[i];
    for (Eigen::Index j = 0; j < d; ++j) s += static_cast<double>(w2(i, j)) * a[static_cast<size_t>(j)];
    o[static_cast<size_t>(i)] = s;
    mean += s;
  }
  mean /= static_cast<double>(h);
  double var = 0;
  for (double s : o) var += (s - mean) * (s - mean);
  const double rstd = 1.0 / std::sqrt(var / static_cast<double>(h) + eps);
  for (Eigen::Index i = 0; i < h; ++i)
    o[static_cast<size_t>(i)] = (o[static_cast<size_t>(i)] - mean) * rstd * gamma(0, i) + beta(0, i);
  return o;
}

BertConfig moe_config(int64_t n, int64_t size, const std::string& router) {
  BertConfig c = tiny_config();
  MoeConfig m;
  m.n_experts = n;
  m.expert_size = size;
  m.router = router;
  m.top_k = 1;
  m.layers = {0};
  c.moe = m;
  return c;
}

}  // namespace

TEST_CASE("expert kernel: LN(x + W2 act(W1 x + b1) + b2) * scale equals a double-precision reference",
          "[expert_kernel]") {
  if (vector_math_best_isa() == VectorIsa::portable) return;  // (for_each_vector_version warns)
  struct Shape {
    int64_t hidden, size;
  };
  // Sizes of 1, 3 and 4 AVX-512 vectors, more than one span of four, and hidden 128 / 64
  // neurons (the demo's experts).
  const Shape shapes[] = {{16, 16}, {32, 48}, {64, 80}, {48, 144}, {128, 64}};
  for_each_vector_version([&] {
    Rng rng(71);
    for (const Shape& sh : shapes)
      for (Activation act : {Activation::gelu, Activation::gelu_new, Activation::relu}) {
        INFO("hidden " << sh.hidden << ", size " << sh.size << ", activation " << static_cast<int>(act));
        const Mat w1 = random_mat(rng, sh.size, sh.hidden, 0.3), b1 = random_mat(rng, 1, sh.size, 0.3);
        const Mat w2 = random_mat(rng, sh.hidden, sh.size, 0.3), b2 = random_mat(rng, 1, sh.hidden, 0.3);
        Mat gamma = random_mat(rng, 1, sh.hidden, 0.2), beta = random_mat(rng, 1, sh.hidden, 0.2);
        gamma.array() += 1.0f;
        const float eps = 1e-5f;
        const ExpertKernelWeights w = pack_expert_kernel(w1, b1, w2, b2, gamma, beta, eps, act);
        const int64_t pool = 20, ldx = sh.hidden + 5, ldy = sh.hidden + 3;
        std::vector<float> x(static_cast<size_t>(pool * ldx));
        for (float& v : x) v = static_cast<float>(rng.normal());
        for (int64_t n : {1, 5, 6, 7, 13}) {
          INFO(n << " rows");
          // n distinct rows of the pool in a shuffled order.
          std::vector<int32_t> rows(static_cast<size_t>(pool));
          for (int32_t i = 0; i < pool; ++i) rows[static_cast<size_t>(i)] = i;
          for (size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[rng.below(i)]);
          rows.resize(static_cast<size_t>(n));
          std::vector<float> scale(static_cast<size_t>(n));
          for (float& s : scale) s = static_cast<float>(0.2 + 1.3 * rng.uniform());
          for (bool scaled : {false, true}) {
            std::vector<float> y(static_cast<size_t>(pool * ldy), 7.0f);
            expert_kernel_forward(w, x.data(), ldx, rows.data(), scaled ? scale.data() : nullptr, n, y.data(), ldy);
            std::vector<bool> written(static_cast<size_t>(pool), false);
            double worst = 0;
            for (int64_t i = 0; i < n; ++i) {
              const int32_t t = rows[static_cast<size_t>(i)];
              written[static_cast<size_t>(t)] = true;
              const std::vector<double> want = reference_row(x.data() + t * ldx, w1, b1, w2, b2, gamma, beta, eps, act);
              const double s = scaled ? scale[static_cast<size_t>(i)] : 1.0;
              for (int64_t j = 0; j < sh.hidden; ++j)
                worst = std::max(worst, std::abs(y[static_cast<size_t>(t * ldy + j)] - s * want[static_cast<size_t>(j)]));
            }
            CHECK(worst < 2e-5);
            bool untouched = true;  // other rows, and the padding between rows, keep the sentinel
            for (int64_t t = 0; t < pool; ++t)
              for (int64_t j = written[static_cast<size_t>(t)] ? sh.hidden : 0; j < ldy; ++j)
                untouched = untouched && y[static_cast<size_t>(t * ldy + j)] == 7.0f;
            CHECK(untouched);
          }
        }
      }
  });
}

TEST_CASE("expert kernel: which shapes it takes", "[expert_kernel]") {
  const bool vector = vector_math_best_isa() != VectorIsa::portable;
  CHECK(expert_kernel_applies(128, 64) == vector);
  CHECK(expert_kernel_applies(256, 128) == vector);  // 32k floats a matrix: the limit
  CHECK_FALSE(expert_kernel_applies(256, 256));      // beyond it: oneDNN's blocked products
  CHECK_FALSE(expert_kernel_applies(120, 64));
  CHECK_FALSE(expert_kernel_applies(128, 24));
  CHECK_FALSE(expert_kernel_applies(0, 64));
  const Mat w1 = Mat::Zero(16, 32), b1 = Mat::Zero(1, 16), w2 = Mat::Zero(16, 32), v = Mat::Zero(1, 32);
  CHECK_THROWS_WITH(pack_expert_kernel(w1, b1, w2, v, v, v, 1e-5f, Activation::gelu),
                    Catch::Contains("do not form one expert"));
}

TEST_CASE("MoeFFN inference with the expert kernel equals the oneDNN path it replaces", "[expert_kernel][moe]") {
  if (vector_math_best_isa() == VectorIsa::portable) {
    WARN("this CPU has no AVX2 + FMA: the fused expert kernel is not used");
    return;
  }
  struct Case {
    const char* name;
    int64_t tied;  // shared neurons (tied_fused serves the kernel's weights)
    bool gate;     // gate weights scale the rows (the hash router's are 1)
  };
  for (Case cs : {Case{"tied, hash", 8, false}, Case{"plain, hash", 0, false}, Case{"plain, gate", 0, true}}) {
    INFO(cs.name);
    const BertConfig c = moe_config(3, 16, cs.gate ? "gate" : "hash");
    DenseFFN dense;
    dense.init("bert.encoder.layer.0.", c);
    Rng rng(72);
    ParamList params;
    dense.collect(params);
    for (Param* p : params) p->value = random_mat(rng, p->value.rows(), p->value.cols(), 0.4);
    // Experts of 16 of the 32 neurons: the first `tied` shared by all, the rest overlapping.
    std::vector<std::vector<int32_t>> neurons(3);
    for (int32_t e = 0; e < 3; ++e) {
      for (int32_t j = 0; j < cs.tied; ++j) neurons[static_cast<size_t>(e)].push_back(j);
      for (int32_t j = 0; j < 16 - cs.tied; ++j)
        neurons[static_cast<size_t>(e)].push_back(static_cast<int32_t>((cs.tied + e * 8 + j) % 32));
    }
    Router router = HashRouter{make_hash_table(c.vocab_size, 3, 1)};
    if (cs.gate) {
      GateRouter g;
      g.init("gate", c.hidden_size, 3, 1);
      g.weight.value = random_mat(rng, 3, c.hidden_size, 0.5);
      router = std::move(g);
    }
    MoeFFN m = MoeFFN::from_dense(dense, neurons, router, true, cs.tied);
    for (ExpertFFN& e : m.experts) {
      e.intermediate.pack_for_inference();
      e.output.pack_for_inference();
    }
    if (m.shared_expert) {
      m.shared_expert->intermediate.pack_for_inference();
      m.shared_expert->output.pack_for_inference();
    }
    m.pack_for_inference();
    REQUIRE(m.expert_kernels);
    CHECK(static_cast<bool>(m.tied_fused) == (cs.tied > 0));
    for_each_vector_version([&] {
      const Batch b = tiny_batch(c, {9, 4, 7}, 16);  // with padding
      const Mat x = random_mat(rng, b.n_tok(), c.hidden_size, 1.0);
      Mat fast, slow;
      m.forward(x, b, fast, nullptr, nullptr, nullptr);
      MoeFFN without = m;
      without.expert_kernels.reset();
      without.forward(x, b, slow, nullptr, nullptr, nullptr);
      REQUIRE(fast.rows() == slow.rows());
      CHECK((fast - slow).cwiseAbs().maxCoeff() < 2e-5f);
      CHECK(slow.cwiseAbs().maxCoeff() > 0.1f);  // a real output, not two zeros
    });
  }
}

TEST_CASE("MoeFFN keeps the oneDNN path where the expert kernel does not apply", "[expert_kernel][moe]") {
  const BertConfig c = moe_config(2, 16, "hash");
  DenseFFN dense;
  dense.init("bert.encoder.layer.0.", c);
  std::vector<std::vector<int32_t>> neurons(2);
  for (int32_t j = 0; j < 32; ++j) neurons[static_cast<size_t>(j / 16)].push_back(j);
  const MoeFFN base = MoeFFN::from_dense(dense, neurons, HashRouter{make_hash_table(c.vocab_size, 2, 1)}, true, 0);
  {
    MoeFFN m = base;  // bf16 products: the kernel is fp32 only
    for (ExpertFFN& e : m.experts) e.intermediate.precision = e.output.precision = Precision::bf16;
    m.pack_for_inference();
    CHECK_FALSE(m.expert_kernels);
  }
  {
    MoeFFN m = base;  // experts without their own LayerNorm (moe.norm layer)
    m.expert_norm = false;
    m.pack_for_inference();
    CHECK_FALSE(m.expert_kernels);
  }
  {
    MoeFFN m = base;  // training drops it with the weights it was made from
    m.pack_for_inference();
    CHECK(static_cast<bool>(m.expert_kernels) == (vector_math_best_isa() != VectorIsa::portable));
    Rng rng(73);
    const Batch b = tiny_batch(c, {5, 3}, 17);
    const Mat x = random_mat(rng, b.n_tok(), c.hidden_size, 1.0);
    Mat y, dx;
    MoeFFN::Cache cache;
    m.forward(x, b, y, &cache, nullptr, nullptr);
    m.backward(random_mat(rng, b.n_tok(), c.hidden_size, 1.0), b, cache, dx, 0.0f);
    CHECK_FALSE(m.expert_kernels);
  }
}

TEST_CASE("MoeFFN int8 inference with the expert kernel equals the oneDNN path exactly", "[expert_kernel][moe][int8]") {
  if (!expert_kernel_int8_applies(16, 0, 16)) {
    WARN("this CPU has no AVX-512 VNNI (or runs 7-bit int8 codes): the fused int8 expert kernel is not used");
    return;
  }
  struct Case {
    const char* name;
    int64_t tied;
    bool gate;
  };
  // Tied 4 + 12 (the stacked up-projection splits inside a vector), plain, a gate's weights.
  for (Case cs : {Case{"tied, hash", 4, false}, Case{"plain, hash", 0, false}, Case{"plain, gate", 0, true}}) {
    INFO(cs.name);
    const BertConfig c = moe_config(3, 16, cs.gate ? "gate" : "hash");
    DenseFFN dense;
    dense.init("bert.encoder.layer.0.", c);
    Rng rng(74);
    ParamList params;
    dense.collect(params);
    for (Param* p : params) p->value = random_mat(rng, p->value.rows(), p->value.cols(), 0.4);
    std::vector<std::vector<int32_t>> neurons(3);
    for (int32_t e = 0; e < 3; ++e) {
      for (int32_t j = 0; j < cs.tied; ++j) neurons[static_cast<size_t>(e)].push_back(j);
      for (int32_t j = 0; j < 16 - cs.tied; ++j)
        neurons[static_cast<size_t>(e)].push_back(static_cast<int32_t>((cs.tied + e * 8 + j) % 32));
    }
    Router router = HashRouter{make_hash_table(c.vocab_size, 3, 1)};
    if (cs.gate) {
      GateRouter g;
      g.init("gate", c.hidden_size, 3, 1);
      g.weight.value = random_mat(rng, 3, c.hidden_size, 0.5);
      router = std::move(g);
    }
    MoeFFN m = MoeFFN::from_dense(dense, neurons, router, true, cs.tied);
    auto to_int8 = [](Linear& l) { l.set_int8_weight(quantize_int8_rows(l.weight.value)); };
    for (ExpertFFN& e : m.experts) {
      to_int8(e.intermediate);
      to_int8(e.output);
    }
    if (m.shared_expert) {
      to_int8(m.shared_expert->intermediate);
      to_int8(m.shared_expert->output);
    }
    m.pack_for_inference();
    REQUIRE(m.expert_kernels_int8);
    CHECK_FALSE(m.expert_kernels);
    const Batch b = tiny_batch(c, {9, 4, 7}, 18);  // with padding
    Mat x = random_mat(rng, b.n_tok(), c.hidden_size, 1.0);
    Mat fast, slow;
    m.forward(x, b, fast, nullptr, nullptr, nullptr);
    MoeFFN without = m;
    without.expert_kernels_int8.reset();
    without.forward(x, b, slow, nullptr, nullptr, nullptr);
    CHECK(fast == slow);  // exact integer sums, the reference's float steps
    CHECK(slow.cwiseAbs().maxCoeff() > 0.1f);
    x(2, 3) = std::nanf("");  // a non-finite row stays non-finite, the others unchanged
    m.forward(x, b, fast, nullptr, nullptr, nullptr);
    without.forward(x, b, slow, nullptr, nullptr, nullptr);
    CHECK(std::isnan(fast(2, 0)));
    CHECK(fast.bottomRows(fast.rows() - 3) == slow.bottomRows(slow.rows() - 3));
  }
}
