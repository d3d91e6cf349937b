// Issue 19's routing features around the MoE dispatch: a tied shared FFN, the sentence gate,
// training capacity and router jitter. Gradients against finite differences for each new
// trainable path, and the identities: tied with S = 0 equals copy (and tied with S > 0 equals copy
// at conversion), a capacity of infinity equals dropless.
#include <catch2/catch.hpp>

#include <numeric>
#include <set>

#include "model/moe_ffn.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

BertConfig routed_config(const std::string& router, int64_t n, int64_t size, int64_t top_k, int64_t shared,
                         const std::string& shared_mode, const std::string& norm = "expert") {
  BertConfig c = tiny_config();
  MoeConfig m;
  m.n_experts = n;
  m.expert_size = size;
  m.shared = shared;
  m.shared_mode = shared_mode;
  m.router = router;
  m.top_k = top_k;
  m.norm = norm;
  m.layers = {0};
  c.moe = m;
  c.validate();
  return c;
}

ParamList randomized(MoeFFN& m, uint64_t seed, double scale = 0.5) {
  Rng rng(seed);
  ParamList params;
  m.collect(params);
  for (Param* p : params) p->value = random_mat(rng, p->value.rows(), p->value.cols(), scale);
  return params;
}

// Finite differences of L = sum(R * y) + w * balance for x and every parameter of m; routing
// (and so capacity) decisions are frozen by skipping entries that flip them. train: with a
// dropout Rng (capacity and jitter apply), cloned so every evaluation draws the same noise.
void check_moe_gradients(MoeFFN& m, const BertConfig& c, const Batch& b, bool train, float w, uint64_t seed) {
  ParamList params = randomized(m, seed);
  Rng rng(seed + 1);
  Mat x = random_mat(rng, b.n_tok(), c.hidden_size), r = random_mat(rng, b.n_tok(), c.hidden_size);
  const Rng drop(seed + 2);
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
  zero_grads(params);
  m.backward(r, b, cache, dx, w);
  // Routing and capacity are discrete: entries whose perturbation changes a choice are kinks.
  auto observe = [&] {
    Rng dd = drop;
    MoeFFN::Cache c2;
    Mat y2;
    m.forward(x, b, y2, &c2, train ? &dd : nullptr, nullptr);
    std::vector<int32_t> v = c2.routing.choice;
    v.insert(v.end(), c2.dropped.begin(), c2.dropped.end());
    return v;
  };
  const GradTolerance tol;
  check_gradient("x", x, dx, loss, tol, skip_if_changes(x, tol.eps, observe));
  for (Param* p : params) check_gradient(p->name, p->value, p->grad, loss, tol, skip_if_changes(p->value, tol.eps, observe));
}

std::vector<int32_t> iota(int64_t n, int32_t from = 0) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), from);
  return v;
}

}  // namespace

TEST_CASE("Tied shared FFN: backward matches finite differences", "[model][grad][moe][tied]") {
  struct Case {
    const char* router;
    int64_t top_k;
    const char* norm;
  };
  for (Case cs : {Case{"hash", 1, "expert"}, Case{"gate", 2, "expert"}, Case{"gate", 1, "layer"}}) {
    for (bool train : {false, true}) {
      INFO(cs.router << " top-" << cs.top_k << " norm " << cs.norm << " train " << train);
      const BertConfig c = routed_config(cs.router, 3, 8, cs.top_k, 3, "tied", cs.norm);
      MoeFFN m;
      m.init("layer.", c, 5);
      REQUIRE(m.shared_expert);
      CHECK(m.shared_expert->size() == 3);
      CHECK(m.experts[0].size() == 5);
      CHECK(m.shared_expert->intermediate.weight.name == "layer.moe.shared_expert.intermediate.dense.weight");
      m.check(c, 5);
      check_moe_gradients(m, c, tiny_batch(c, {6, 4, 3}, 12), train, m.gated() ? 0.5f : 0.0f, 41);
    }
  }
}

TEST_CASE("Tied with S = 0 equals copy; tied with S > 0 equals copy at conversion", "[model][moe][tied]") {
  BertConfig c = tiny_config();  // ffn 32
  DenseFFN dense;
  dense.init("bert.encoder.layer.0.", c);
  Rng rng(44);
  ParamList params;
  dense.collect(params);
  for (Param* p : params) p->value = random_mat(rng, p->value.rows(), p->value.cols(), 0.4);
  // 3 experts of 10: the first `shared` neurons in each, then their own.
  auto plan = [](int shared) {
    std::vector<std::vector<int32_t>> experts(3, iota(shared));
    for (int e = 0; e < 3; ++e)
      for (int k = 0; k < 10 - shared; ++k) experts[static_cast<size_t>(e)].push_back(shared + e + 3 * k);
    return experts;
  };
  Batch b = tiny_batch(c, {6, 3}, 14);
  const Mat x = random_mat(rng, b.n_tok(), c.hidden_size);
  GateRouter gate;
  gate.init("g", c.hidden_size, 3, 2);
  gate.weight.value = random_mat(rng, 3, c.hidden_size, 1.0);
  for (bool use_gate : {false, true}) {
    for (bool layer_norm : {false, true}) {
      for (int shared : {0, 4}) {
        INFO("gate " << use_gate << " layer norm " << layer_norm << " S " << shared);
        if (use_gate && layer_norm && shared > 0) continue;  // S + sum g E != sum g (S + E) for g != 1
        const Router router = use_gate ? Router(gate) : Router(HashRouter{make_hash_table(40, 3, 2)});
        const MoeFFN copy = MoeFFN::from_dense(dense, plan(shared), router, !layer_norm);
        const MoeFFN tied = MoeFFN::from_dense(dense, plan(shared), router, !layer_norm, shared);
        CHECK(tied.shared_expert.has_value() == (shared > 0));
        CHECK(tied.experts[0].size() == 10 - shared);
        if (shared > 0) CHECK(tied.shared_expert->neuron_index == iota(shared));
        Mat yc, yt;
        Rng d1(3), d2(3);
        copy.forward(x, b, yc, nullptr, &d1, nullptr);
        tied.forward(x, b, yt, nullptr, &d2, nullptr);
        if (shared == 0)
          CHECK(yt == yc);  // the same layer: exact
        else  // the shared neurons' sum is split in two products: float round-off only
          CHECK((yt - yc).cwiseAbs().maxCoeff() <= 1e-5f * (1.0f + yc.cwiseAbs().maxCoeff()));
      }
    }
  }
  CHECK_THROWS_WITH(MoeFFN::from_dense(dense, {{0, 1, 2}, {0, 3, 4}}, HashRouter{}, true, 2),
                    Catch::Contains("must all start with the same shared neurons"));
}

TEST_CASE("Capacity: infinity equals dropless; slots over capacity skip the expert", "[model][moe][capacity]") {
  for (const char* norm : {"expert", "layer"}) {
    INFO("norm " << norm);
    const BertConfig c = routed_config("gate", 3, 8, 2, 0, "copy", norm);
    MoeFFN m;
    m.init("layer.", c, 5);
    ParamList params = randomized(m, 51);
    Batch b = tiny_batch(c, {7, 5, 2}, 13);
    Rng rng(52);
    const Mat x = random_mat(rng, b.n_tok(), c.hidden_size), r = random_mat(rng, b.n_tok(), c.hidden_size);
    auto run = [&](double factor, Mat& y, Mat& dx, std::vector<Mat>& grads, MoeStats& stats) {
      m.train_routing.capacity_factor = factor;
      MoeFFN::Cache cache;
      Rng d(9);
      m.forward(x, b, y, &cache, &d, &stats);
      zero_grads(params);
      m.backward(r, b, cache, dx, 0.3f);
      grads.clear();
      for (Param* p : params) grads.push_back(p->grad);
    };
    Mat y0, dx0, y1, dx1, y2, dx2;
    std::vector<Mat> g0, g1, g2;
    MoeStats s0, s1, s2;
    run(0, y0, dx0, g0, s0);
    run(1e9, y1, dx1, g1, s1);
    CHECK(y1 == y0);
    CHECK(dx1 == dx0);
    CHECK(g1 == g0);
    CHECK(s1.dropped_slots == 0);
    CHECK(s0.routed_slots == 2 * b.real_tokens());
    run(0.5, y2, dx2, g2, s2);  // half the fair share: at least half the slots must go
    CHECK(s2.dropped_slots * 2 >= s2.routed_slots - 6);
    CHECK(y2 != y0);
    // Evaluation (no dropout Rng) is dropless whatever the factor.
    Mat ye, ye0;
    m.forward(x, b, ye, nullptr, nullptr, nullptr);
    m.train_routing.capacity_factor = 0;
    m.forward(x, b, ye0, nullptr, nullptr, nullptr);
    CHECK(ye == ye0);
  }
  // Hash, expert norms, one expert of capacity 1 per batch: every other token comes out as x.
  const BertConfig c = routed_config("hash", 2, 8, 1, 0, "copy");
  MoeFFN m;
  m.init("layer.", c, 5);
  randomized(m, 53);
  Batch b = tiny_batch(c, {6, 6}, 15);
  Rng rng(54);
  const Mat x = random_mat(rng, b.n_tok(), c.hidden_size);
  m.hidden_dropout = 0;
  m.train_routing.capacity_factor = 1.0 / static_cast<double>(b.real_tokens());  // capacity 1
  MoeFFN::Cache cache;
  Mat y;
  Rng d(1);
  MoeStats stats;
  m.forward(x, b, y, &cache, &d, &stats);
  const int64_t kept = std::accumulate(stats.load.begin(), stats.load.end(), int64_t{0});
  CHECK(kept <= 2);  // one real token per expert
  CHECK(stats.dropped_slots == b.real_tokens() - kept);
  for (int32_t s : cache.dropped) CHECK(y.row(s) == x.row(s));
}

TEST_CASE("Capacity and jitter: backward matches finite differences", "[model][grad][moe][capacity]") {
  struct Case {
    const char* router;
    int64_t top_k;
    const char* norm;
    double capacity, jitter;
  };
  for (Case cs : {Case{"gate", 1, "expert", 0.7, 0}, Case{"gate", 2, "expert", 0.8, 0.2}, Case{"gate", 2, "layer", 0.8, 0.1},
                  Case{"hash", 1, "expert", 0.6, 0}}) {
    INFO(cs.router << " top-" << cs.top_k << " norm " << cs.norm << " capacity " << cs.capacity << " jitter " << cs.jitter);
    const BertConfig c = routed_config(cs.router, 3, 8, cs.top_k, 0, "copy", cs.norm);
    MoeFFN m;
    m.init("layer.", c, 5);
    m.train_routing = {cs.capacity, cs.jitter};
    const Batch b = tiny_batch(c, {6, 5, 3}, 12);
    check_moe_gradients(m, c, b, true, m.gated() ? 0.5f : 0.0f, 61);
    MoeFFN::Cache cache;
    Mat x = Mat::Ones(b.n_tok(), c.hidden_size), y;
    Rng d(2);
    m.forward(x, b, y, &cache, &d, nullptr);
    CHECK(!cache.dropped.empty());  // the case exercises drops
    if (cs.jitter > 0) CHECK(cache.jitter.size() > 0);
  }
}

TEST_CASE("Sentence gate: one expert per sequence, batch-1 path equals the batched rows, gradients",
          "[model][grad][moe][sentence]") {
  const BertConfig c = routed_config("gate-sentence", 3, 8, 1, 0, "copy");
  MoeFFN m;
  m.init("layer.", c, 5);
  REQUIRE(std::get<GateRouter>(m.router).sentence);
  randomized(m, 71, 1.0);
  const Batch b = tiny_batch(c, {6, 4, 3, 5}, 12);
  Rng rng(72);
  const Mat x = random_mat(rng, b.n_tok(), c.hidden_size);
  MoeFFN::Cache cache;
  Mat y;
  m.forward(x, b, y, &cache, nullptr, nullptr);
  std::set<int32_t> used;
  for (int64_t s = 0; s < b.batch; ++s) {
    const int32_t e = cache.routing.choice[static_cast<size_t>(s * b.seq)];
    used.insert(e);
    for (int64_t t = 0; t < b.seq; ++t) CHECK(cache.routing.choice[static_cast<size_t>(s * b.seq + t)] == e);
    // The same sequence alone (batch 1: one expert takes every row, no gather) gives its rows.
    Batch one;
    one.batch = 1;
    one.seq = b.seq;
    one.ids.assign(b.ids.begin() + s * b.seq, b.ids.begin() + (s + 1) * b.seq);
    one.type_ids.assign(b.type_ids.begin() + s * b.seq, b.type_ids.begin() + (s + 1) * b.seq);
    one.mask.assign(b.mask.begin() + s * b.seq, b.mask.begin() + (s + 1) * b.seq);
    Mat y1;
    m.forward(x.middleRows(s * b.seq, b.seq), one, y1, nullptr, nullptr, nullptr);
    const Mat want = y.middleRows(s * b.seq, b.seq);
    CHECK((y1 - want).cwiseAbs().maxCoeff() <= 1e-5f * (1.0f + want.cwiseAbs().maxCoeff()));
  }
  CHECK(used.size() > 1);  // the case routes sequences apart
  for (bool train : {false, true}) {
    INFO("train " << train);
    MoeFFN g;
    g.init("layer.", c, 5);
    check_moe_gradients(g, c, b, train, 0.5f, 73);
  }
  // Padding does not move the pooled input: a sequence's routing ignores its padded rows.
  Mat x2 = x;
  for (int64_t t = 0; t < b.n_tok(); ++t)
    if (!b.mask[static_cast<size_t>(t)]) x2.row(t).setConstant(100.0f);
  CHECK(m.route(x2, b, nullptr).choice == cache.routing.choice);
}

TEST_CASE("Config: shared_mode and gate-sentence are validated", "[model][moe]") {
  CHECK_THROWS_WITH(routed_config("hash", 3, 8, 1, 8, "tied"), Catch::Contains("leaves no routed neurons"));
  CHECK_THROWS_WITH(routed_config("hash", 3, 8, 1, 2, "both"), Catch::Contains("moe.shared_mode: unknown"));
  CHECK_THROWS_WITH(routed_config("gate-sentence", 3, 8, 2, 0, "copy"), Catch::Contains("one expert (top_k 1)"));
  const BertConfig c = routed_config("hash", 3, 8, 1, 2, "tied");
  CHECK(c.moe->routed_size() == 6);
  CHECK(c.moe->neurons_per_token() == 8);
}
