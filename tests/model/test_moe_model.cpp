// BERT with MoE layers: whole-model gradient (cross-entropy + balance loss), the one-full-expert
// identity at model level, set_moe checks, parameter counts, and 1 vs 2 threads.
#include <omp.h>

#include <catch2/catch.hpp>
#include <numeric>

#include "model/bert.h"
#include "model/loss.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

BertConfig moe_config(const std::string& router, int64_t top_k, std::vector<int64_t> layers) {
  BertConfig c = tiny_config();
  MoeConfig m;
  m.n_experts = 3;
  m.expert_size = 8;
  m.router = router;
  m.top_k = top_k;
  m.layers = std::move(layers);
  c.moe = m;
  return c;
}

// All routing choices of one forward (MoE layers in order).
std::vector<int32_t> choices(const BertModel& model, const Batch& b, const Rng* drop) {
  ForwardCache cache;
  Rng d = drop ? *drop : Rng();
  model.forward(b, &cache, drop ? &d : nullptr);
  std::vector<int32_t> all;
  for (const auto& lc : cache.layers) all.insert(all.end(), lc.moe.routing.choice.begin(), lc.moe.routing.choice.end());
  return all;
}

}  // namespace

TEST_CASE("Whole-model gradient with MoE layers matches finite differences", "[model][grad][moe]") {
  struct Case {
    const char* router;
    int64_t top_k;
    std::vector<int64_t> layers;
  };
  for (const Case& cs : {Case{"hash", 1, {0, 1}}, Case{"gate", 1, {1}}, Case{"gate", 2, {0, 1}}}) {
    for (bool train : {false, true}) {
      INFO(cs.router << " top-" << cs.top_k << " train " << train);
      BertConfig c = moe_config(cs.router, cs.top_k, cs.layers);
      BertModel model(c);
      randomize(model, 23, 0.3);
      Batch b = tiny_batch(c, {7, 4, 5}, 16);
      const Rng drop(83);
      const float w = 0.5f;
      auto loss = [&] {
        Rng d = drop;
        Outputs out = model.forward(b, nullptr, train ? &d : nullptr);
        return softmax_cross_entropy(out.logits, b.labels, nullptr) + w * out.balance_loss;
      };
      ForwardCache cache;
      cache.balance_weight = w;
      Rng d = drop;
      Outputs out = model.forward(b, &cache, train ? &d : nullptr);
      CHECK((out.balance_loss > 0) == (c.moe->gated()));
      Mat dlogits;
      softmax_cross_entropy(out.logits, b.labels, &dlogits);
      ParamList params = model.params();
      zero_grads(params);
      model.backward(b, dlogits, cache);
      GradTolerance tol;
      tol.nmax = 16;
      tol.abs = 2e-4;  // as test_bert_grad.cpp: a mean over 3 examples, gradients O(1e-2)
      // Skip entries whose perturbation flips a routing choice anywhere in the model.
      auto routing = [&] { return choices(model, b, train ? &drop : nullptr); };
      for (Param* p : params) {
        if (c.moe->gated())
          check_gradient(p->name, p->value, p->grad, loss, tol, skip_if_changes(p->value, tol.eps, routing));
        else
          check_gradient(p->name, p->value, p->grad, loss, tol);  // a hash table never flips
      }
    }
  }
}

TEST_CASE("MoE model with one full expert per layer equals the dense model", "[model][moe]") {
  BertConfig c = tiny_config();
  BertModel dense(c), moe(c);
  randomize(dense, 24, 0.3);
  randomize(moe, 24, 0.3);
  MoeConfig cfg;
  cfg.n_experts = 1;
  cfg.expert_size = c.intermediate_size;
  cfg.layers = {0, 1};
  std::vector<int32_t> all(static_cast<size_t>(c.intermediate_size));
  std::iota(all.begin(), all.end(), 0);
  std::vector<MoeFFN> ffns;
  for (int64_t l : cfg.layers)
    ffns.push_back(MoeFFN::from_dense(moe.layers[static_cast<size_t>(l)].ffn, {all},
                                      HashRouter{std::vector<int32_t>(static_cast<size_t>(c.vocab_size), 0)}));
  moe.set_moe(cfg, std::move(ffns));
  REQUIRE(moe.config.moe);
  CHECK(moe.layers[1].is_moe());
  CHECK(moe.layers[1].ffn.intermediate.weight.value.size() == 0);  // the dense copy is gone
  Batch b = tiny_batch(c, {6, 4, 2}, 17);
  for (bool train : {false, true}) {
    INFO("train " << train);
    Rng d1(84), d2(84);
    Outputs od = dense.forward(b, nullptr, train ? &d1 : nullptr, true);
    Outputs om = moe.forward(b, nullptr, train ? &d2 : nullptr, true);
    CHECK(om.logits == od.logits);  // exact (tolerance.h: MoE == dense)
    for (size_t l = 0; l < od.hidden_states.size(); ++l) CHECK(om.hidden_states[l] == od.hidden_states[l]);
    REQUIRE(om.expert_tokens.size() == 2);
    CHECK(om.expert_tokens[0] == std::vector<int64_t>{b.real_tokens()});
    CHECK(om.balance_loss == 0);
  }
}

TEST_CASE("set_moe checks the FFNs against the config before changing the model", "[model][moe]") {
  BertConfig c = tiny_config();
  BertModel model(c);
  MoeConfig cfg;
  cfg.n_experts = 2;
  cfg.expert_size = 16;
  cfg.layers = {1};
  std::vector<int32_t> lo(16), hi(16);
  std::iota(lo.begin(), lo.end(), 0);
  std::iota(hi.begin(), hi.end(), 16);
  HashRouter h{make_hash_table(c.vocab_size, 2, 3)};
  auto build = [&](size_t layer, HashRouter r) {
    std::vector<MoeFFN> v;
    v.push_back(MoeFFN::from_dense(model.layers[layer].ffn, {lo, hi}, std::move(r)));
    return v;
  };
  CHECK_THROWS_WITH(model.set_moe(cfg, build(0, h)), Catch::Contains("given for \"bert.encoder.layer.1.moe.\""));
  CHECK_THROWS_WITH(model.set_moe(cfg, build(1, HashRouter{{0, 1}})), Catch::Contains("hash table has 2 entries"));
  HashRouter bad = h;
  bad.table[5] = 2;
  CHECK_THROWS_WITH(model.set_moe(cfg, build(1, bad)), Catch::Contains("expert 2"));
  cfg.top_k = 2;
  CHECK_THROWS_WITH(model.set_moe(cfg, build(1, h)), Catch::Contains("moe.top_k"));
  CHECK(!model.config.moe);
  CHECK(!model.layers[1].is_moe());
  cfg.top_k = 1;
  model.set_moe(cfg, build(1, h));
  CHECK(model.layers[1].is_moe());
  CHECK(model.index_params().size() == 3);  // hash table + two neuron_index
}

TEST_CASE("count_params splits the parameters by part", "[model][moe]") {
  BertConfig c = tiny_config();
  const ParamCounts dense = [&] {
    BertModel m(c);
    return count_params(m);
  }();
  CHECK(dense.ffn == 2 * (32 * 16 + 32 + 16 * 32 + 16 + 2 * 16));
  CHECK(dense.experts == 0);
  c.moe = MoeConfig{};
  c.moe->n_experts = 4;
  c.moe->expert_size = 8;
  c.moe->router = "gate";
  c.moe->layers = {1};
  BertModel m(c);
  const ParamCounts n = count_params(m);
  CHECK(n.ffn == dense.ffn / 2);
  CHECK(n.experts == 4 * (8 * 16 + 8 + 16 * 8 + 16 + 2 * 16));
  CHECK(n.router == 4 * 16);
  CHECK(n.embeddings == dense.embeddings);
  CHECK(n.attention == dense.attention);
  CHECK(n.head == dense.head);
  CHECK(n.total == static_cast<int64_t>(count_values(m.params())));
  CHECK(n.index_values == 4 * 8);  // neuron_index only: a gate has no table
}

TEST_CASE("MoE model: one and two threads agree to float round-off", "[model][threads][moe]") {
  BertConfig c = moe_config("gate", 2, {0, 1});
  c.hidden_size = 64;
  c.intermediate_size = 256;
  c.moe->n_experts = 4;
  c.moe->expert_size = 64;
  BertModel model(c);
  randomize(model, 32, 0.1);
  Batch b = tiny_batch(c, {20, 13, 7, 20, 3}, 18);
  const int saved = omp_get_max_threads();
  std::vector<Mat> logits, grads[2];
  std::vector<std::vector<int64_t>> load[2];
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    ForwardCache cache;
    cache.balance_weight = 0.1f;
    Rng drop(5);
    Outputs out = model.forward(b, &cache, &drop);
    Mat dlogits;
    softmax_cross_entropy(out.logits, b.labels, &dlogits);
    zero_grads(model.params());
    model.backward(b, dlogits, cache);
    logits.push_back(out.logits);
    load[threads - 1] = out.expert_tokens;
    for (Param* p : model.params()) grads[threads - 1].push_back(p->grad);
  }
  omp_set_num_threads(saved);
  CHECK(load[0] == load[1]);
  CHECK((logits[0] - logits[1]).cwiseAbs().maxCoeff() <= 1e-5f * (1.0f + logits[0].cwiseAbs().maxCoeff()));
  for (size_t i = 0; i < grads[0].size(); ++i) {
    INFO(model.params()[i]->name);
    const float scale = 1.0f + grads[0][i].cwiseAbs().maxCoeff();
    CHECK((grads[0][i] - grads[1][i]).cwiseAbs().maxCoeff() <= 1e-5f * scale);
  }
}
