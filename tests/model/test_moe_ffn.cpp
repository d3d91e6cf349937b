// The MoE FFN layer: gradients against finite differences (hash, gate top-1, gate top-2, with the
// balance loss, eval and train), identities with the dense FFN, and dispatch.
#include <catch2/catch.hpp>

#include <numeric>

#include "model/activation.h"
#include "model/moe_ffn.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

BertConfig moe_config(const std::string& router, int64_t n, int64_t size, int64_t top_k) {
  BertConfig c = tiny_config();
  MoeConfig m;
  m.n_experts = n;
  m.expert_size = size;
  m.router = router;
  m.top_k = top_k;
  m.layers = {0};
  c.moe = m;
  return c;
}

void randomize(const ParamList& params, Rng& rng, double scale) {
  for (Param* p : params) p->value = random_mat(rng, p->value.rows(), p->value.cols(), scale);
}

std::vector<int32_t> iota(int64_t n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Skips entries whose +-eps perturbation changes any routing choice: top-k selection is a
// discrete decision, frozen during the check (STYLE.md 2.7, ggml's grad_expect).
std::function<bool(Eigen::Index)> skip_flips(const MoeFFN& m, const Mat& x, const Batch& b, Mat& t, float eps) {
  return skip_if_changes(t, eps, [&m, &x, &b] { return m.route(x, b, nullptr).choice; });
}

}  // namespace

TEST_CASE("MoeFFN backward matches finite differences (hash, gate top-1, gate top-2, balance loss)",
          "[model][grad][moe]") {
  struct Case {
    const char* router;
    int64_t top_k;
  };
  for (Case cs : {Case{"hash", 1}, Case{"gate", 1}, Case{"gate", 2}}) {
    for (bool train : {false, true}) {
      INFO(cs.router << " top-" << cs.top_k << " train " << train);
      const BertConfig c = moe_config(cs.router, 3, 8, cs.top_k);
      MoeFFN m;
      m.init("layer.", c, 5);
      Rng rng(41);
      ParamList params;
      m.collect(params);
      randomize(params, rng, 0.5);
      Batch b = tiny_batch(c, {6, 4, 3}, 12);
      Mat x = random_mat(rng, b.n_tok(), c.hidden_size), r = random_mat(rng, b.n_tok(), c.hidden_size);
      const float w = m.gated() ? 0.7f : 0.0f;  // balance weight
      const Rng drop(81);
      auto loss = [&] {
        Mat y;
        Rng d = drop;
        MoeStats stats;
        m.forward(x, b, y, nullptr, train ? &d : nullptr, &stats);
        return weighted_sum(r, y) + w * stats.balance_loss;
      };
      MoeFFN::Cache cache;
      Mat y, dx;
      Rng d = drop;
      m.forward(x, b, y, &cache, train ? &d : nullptr, nullptr);
      for (const auto& tokens : cache.routing.tokens) REQUIRE(!tokens.empty());  // every expert has grads
      zero_grads(params);
      m.backward(r, b, cache, dx, w);
      const GradTolerance tol;
      check_gradient("x", x, dx, loss, tol, skip_flips(m, x, b, x, tol.eps));
      for (Param* p : params) check_gradient(p->name, p->value, p->grad, loss, tol, skip_flips(m, x, b, p->value, tol.eps));
    }
  }
}

TEST_CASE("The balance-loss gradient alone reaches the router weight", "[model][grad][moe]") {
  const BertConfig c = moe_config("gate", 4, 8, 1);
  MoeFFN m;
  m.init("layer.", c, 5);
  Rng rng(43);
  ParamList params;
  m.collect(params);
  randomize(params, rng, 0.5);
  Batch b = tiny_batch(c, {7, 5}, 13);
  Mat x = random_mat(rng, b.n_tok(), c.hidden_size);
  auto loss = [&] {
    Mat y;
    MoeStats stats;
    m.forward(x, b, y, nullptr, nullptr, &stats);
    return static_cast<double>(stats.balance_loss);
  };
  MoeFFN::Cache cache;
  Mat y, dx;
  m.forward(x, b, y, &cache, nullptr, nullptr);
  zero_grads(params);
  m.backward(Mat::Zero(y.rows(), y.cols()), b, cache, dx, 1.0f);
  Param& wg = std::get<GateRouter>(m.router).weight;
  REQUIRE(wg.grad.norm() > 1e-3);
  GradTolerance tol;
  tol.abs = 2e-4;  // B is O(1) with O(1e-2) gradients
  check_gradient("router", wg.value, wg.grad, loss, tol, skip_flips(m, x, b, wg.value, tol.eps));
  check_gradient("x", x, dx, loss, tol, skip_flips(m, x, b, x, tol.eps));
}

TEST_CASE("MoE with one full expert equals the dense FFN", "[model][moe]") {
  for (bool train : {false, true}) {
    INFO("train " << train);
    BertConfig c = tiny_config();
    DenseFFN dense;
    dense.init("bert.encoder.layer.0.", c);
    Rng rng(44);
    ParamList params;
    dense.collect(params);
    randomize(params, rng, 0.4);
    MoeFFN m = MoeFFN::from_dense(dense, {iota(c.intermediate_size)}, HashRouter{std::vector<int32_t>(40, 0)});
    CHECK(m.prefix == "bert.encoder.layer.0.moe.");
    CHECK(m.experts[0].intermediate.weight.name == "bert.encoder.layer.0.moe.experts.0.intermediate.dense.weight");
    Batch b = tiny_batch(c, {6, 3}, 14);
    Mat x = random_mat(rng, b.n_tok(), c.hidden_size);
    Rng d1(82), d2(82);
    Mat yd, ym;
    DenseFFN::Cache dc;
    MoeFFN::Cache mc;
    dense.forward(x, yd, &dc, train ? &d1 : nullptr);
    m.forward(x, b, ym, &mc, train ? &d2 : nullptr, nullptr);
    CHECK(ym == yd);  // same operations on the same numbers: exact (tolerance.h: MoE == dense)
    CHECK(d1.s == d2.s);  // the same dropout draws
    Mat r = random_mat(rng, b.n_tok(), c.hidden_size), dxd, dxm;
    dense.backward(r, dc, dxd);
    m.backward(r, b, mc, dxm, 0.0f);
    CHECK(dxm == dxd);
    CHECK(m.experts[0].intermediate.weight.grad == dense.intermediate.weight.grad);
    CHECK(m.experts[0].output.bias.grad == dense.output.bias.grad);
  }
}

TEST_CASE("Partition experts sum to the dense FFN", "[model][moe]") {
  BertConfig c = tiny_config();
  DenseFFN dense;
  dense.init("bert.encoder.layer.1.", c);
  Rng rng(45);
  ParamList params;
  dense.collect(params);
  randomize(params, rng, 0.4);
  // A shuffled partition of the 32 neurons into 4 experts of 8 (shared = 0).
  std::vector<int32_t> perm = iota(c.intermediate_size);
  for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[rng.below(i)]);
  std::vector<std::vector<int32_t>> parts(4);
  for (size_t i = 0; i < perm.size(); ++i) parts[i / 8].push_back(perm[i]);
  MoeFFN m = MoeFFN::from_dense(dense, parts, HashRouter{make_hash_table(40, 4, 1)});
  Mat x = random_mat(rng, 9, c.hidden_size);
  Mat z, a, want, sum = Mat::Zero(9, c.hidden_size);
  dense.intermediate.forward(x, z, nullptr);
  activation_forward(c.hidden_act, z, a);
  want = a * dense.output.weight.value.transpose();
  for (const ExpertFFN& e : m.experts) {
    Mat part;
    e.ffn_part(x, part);
    sum += part;
    CHECK(e.output.bias.value == dense.output.bias.value);  // each expert has its own copy of b2
    CHECK(e.norm.weight.value == dense.norm.weight.value);
  }
  // Only the summation order differs: float round-off.
  CHECK((sum - want).cwiseAbs().maxCoeff() <= 1e-5f * (1.0f + want.cwiseAbs().maxCoeff()));
  CHECK(m.experts[2].neuron_index == parts[2]);
}

TEST_CASE("from_dense refuses experts it cannot build", "[model][moe]") {
  BertConfig c = tiny_config();
  DenseFFN dense;
  dense.init("bert.encoder.layer.0.", c);
  HashRouter h{std::vector<int32_t>(40, 0)};
  CHECK_THROWS_WITH(MoeFFN::from_dense(dense, {{0, 1}, {2}}, h), Catch::Contains("expert 1 has 1 neurons"));
  CHECK_THROWS_WITH(MoeFFN::from_dense(dense, {{0, 32}}, h), Catch::Contains("neuron 32 is outside"));
  CHECK_THROWS_WITH(MoeFFN::from_dense(dense, {{3, 3}}, h), Catch::Contains("appears twice"));
  GateRouter g;
  g.init("x", c.hidden_size, 3, 1);
  CHECK_THROWS_WITH(MoeFFN::from_dense(dense, {{0}, {1}}, g), Catch::Contains("router weight is [3, 16]"));
}

TEST_CASE("Dispatch: each expert processes exactly its tokens", "[model][moe]") {
  const BertConfig c = moe_config("hash", 3, 8, 1);
  MoeFFN m;
  m.init("layer.", c, 9);
  Rng rng(46);
  ParamList params;
  m.collect(params);
  randomize(params, rng, 0.5);
  // Expert e outputs the constant row e + 1 (LayerNorm weight 0, bias e + 1): y names the expert.
  for (size_t e = 0; e < m.experts.size(); ++e) {
    m.experts[e].norm.weight.value.setZero();
    m.experts[e].norm.bias.value.setConstant(static_cast<float>(e + 1));
  }
  Batch b = tiny_batch(c, {8, 5, 2}, 15);
  Mat x = random_mat(rng, b.n_tok(), c.hidden_size), y;
  MoeFFN::Cache cache;
  MoeStats stats;
  m.forward(x, b, y, &cache, nullptr, &stats);
  const auto& table = std::get<HashRouter>(m.router).table;
  std::vector<int64_t> load(3, 0);
  int64_t processed = 0;
  for (int64_t t = 0; t < b.n_tok(); ++t) {
    const int32_t e = table[static_cast<size_t>(b.ids[static_cast<size_t>(t)])];
    CHECK(y.row(t) == Mat::Constant(1, c.hidden_size, static_cast<float>(e + 1)));
    load[static_cast<size_t>(e)] += b.mask[static_cast<size_t>(t)];
  }
  CHECK(stats.load == load);  // padding excluded
  for (size_t e = 0; e < 3; ++e) {
    const auto& rows = cache.routing.tokens[e];
    const Mat& seen = cache.experts[e].in.x;  // what expert e's first GEMM multiplied
    REQUIRE(seen.rows() == static_cast<Eigen::Index>(rows.size()));
    for (size_t i = 0; i < rows.size(); ++i) CHECK(seen.row(static_cast<Eigen::Index>(i)) == x.row(rows[i]));
    processed += seen.rows();
  }
  CHECK(processed == b.n_tok());  // each token once: the cost is the tokens per expert
}
