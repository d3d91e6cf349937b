// Go-Wider sharing (DESIGN.md 4.4): layers of a group run one MoE FFN (and optionally one
// attention) with their own LayerNorms. Checked against an unshared model whose layers hold equal
// copies: same outputs, and the shared gradient is the sum of the copies' gradients; plus the
// whole-model finite-difference check and the parameter counts.
#include <catch2/catch.hpp>
#include <map>

#include "model/bert.h"
#include "model/error.h"
#include "model/loss.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

// 3 layers, all MoE with one LayerNorm per layer; layers 0 and 1 share when `shared`.
BertConfig layer_norm_moe_config(const std::string& router, int64_t top_k, bool shared, bool share_attention) {
  BertConfig c = tiny_config();
  c.num_hidden_layers = 3;
  MoeConfig m;
  m.n_experts = 3;
  m.expert_size = 8;
  m.router = router;
  m.top_k = top_k;
  m.layers = {0, 1, 2};
  m.norm = "layer";
  if (shared) m.share_groups = {{0, 1}};
  m.share_attention = shared && share_attention;
  c.moe = m;
  return c;
}

// The name `name` has in the shared model: layer 1's MoE FFN (and attention projections) are
// layer 0's there.
std::string shared_name(const std::string& name, bool share_attention) {
  const std::string l1 = "bert.encoder.layer.1.";
  if (name.rfind(l1, 0) != 0) return name;
  const std::string rest = name.substr(l1.size());
  const bool projection = rest.rfind("attention.", 0) == 0 && rest.find("LayerNorm") == std::string::npos;
  if (rest.rfind("moe.", 0) == 0 || (share_attention && projection)) return "bert.encoder.layer.0." + rest;
  return name;
}

// Copies every value (and hash table) of `shared` into the unshared `copies`.
void copy_into_unshared(BertModel& shared, BertModel& copies, bool share_attention) {
  std::map<std::string, Param*> by_name;
  for (Param* p : shared.params()) by_name[p->name] = p;
  for (Param* p : copies.params()) {
    auto it = by_name.find(shared_name(p->name, share_attention));
    REQUIRE(it != by_name.end());
    p->value = it->second->value;
  }
  std::map<std::string, std::vector<int32_t>*> tables;
  for (const IndexParam& ip : shared.index_params()) tables[ip.name] = ip.values;
  for (const IndexParam& ip : copies.index_params()) *ip.values = *tables.at(shared_name(ip.name, share_attention));
}

float max_abs(const Mat& m) { return m.size() ? m.cwiseAbs().maxCoeff() : 0.0f; }

}  // namespace

TEST_CASE("A shared group computes what an unshared model with equal copies computes", "[model][sharing]") {
  for (const char* router : {"hash", "gate"}) {
    for (bool share_attention : {false, true}) {
      for (bool train : {false, true}) {
        INFO(router << " share_attention " << share_attention << " train " << train);
        const int64_t top_k = std::string(router) == "gate" ? 2 : 1;
        BertModel shared(layer_norm_moe_config(router, top_k, true, share_attention));
        BertModel copies(layer_norm_moe_config(router, top_k, false, false));
        randomize(shared, 7, 0.3);
        copy_into_unshared(shared, copies, share_attention);
        const Batch b = tiny_batch(shared.config, {6, 3, 5}, 4);

        ForwardCache cs, cc;
        cs.balance_weight = cc.balance_weight = 0.3f;
        Rng ds(99), dc(99);
        const Outputs os = shared.forward(b, &cs, train ? &ds : nullptr, true);
        const Outputs oc = copies.forward(b, &cc, train ? &dc : nullptr, true);
        REQUIRE(os.hidden_states.size() == oc.hidden_states.size());
        for (size_t l = 0; l < os.hidden_states.size(); ++l) CHECK(os.hidden_states[l] == oc.hidden_states[l]);
        CHECK(os.logits == oc.logits);
        CHECK(os.balance_loss == oc.balance_loss);
        CHECK(os.expert_tokens == oc.expert_tokens);

        // Gradients: every shared tensor's grad is the sum of its copies' grads.
        Mat dlogits;
        softmax_cross_entropy(os.logits, b.labels, &dlogits);
        zero_grads(shared.params());
        zero_grads(copies.params());
        shared.backward(b, dlogits, cs);
        copies.backward(b, dlogits, cc);
        std::map<std::string, Mat> summed;
        for (Param* p : copies.params()) {
          Mat& s = summed[shared_name(p->name, share_attention)];
          s = s.size() ? Mat(s + p->grad) : p->grad;
        }
        for (Param* p : shared.params()) {
          INFO(p->name);
          const Mat& want = summed.at(p->name);
          // GEMM accumulation order differs (grad += dy^T x straight into the shared buffer).
          CHECK(max_abs(p->grad - want) <= 1e-5f * (1.0f + max_abs(want)));
        }
        // So that the sums above are not trivially one term: layer 1's copy has a gradient.
        Param* w1 = nullptr;
        for (Param* p : copies.params())
          if (p->name == "bert.encoder.layer.1.moe.experts.0.intermediate.dense.weight") w1 = p;
        REQUIRE(w1);
        CHECK(max_abs(w1->grad) > 0);
      }
    }
  }
}

TEST_CASE("Whole-model gradient of a shared model matches finite differences", "[model][grad][sharing]") {
  for (bool share_attention : {false, true}) {
    INFO("share_attention " << share_attention);
    BertModel model(layer_norm_moe_config("gate", 2, true, share_attention));
    randomize(model, 31, 0.3);
    const Batch b = tiny_batch(model.config, {5, 7}, 12);
    const float w = 0.5f;
    auto loss = [&] {
      Outputs out = model.forward(b, nullptr, nullptr);
      return softmax_cross_entropy(out.logits, b.labels, nullptr) + w * out.balance_loss;
    };
    auto routing = [&] {
      ForwardCache cache;
      model.forward(b, &cache, nullptr);
      std::vector<int32_t> all;
      for (const auto& lc : cache.layers) all.insert(all.end(), lc.moe.routing.choice.begin(), lc.moe.routing.choice.end());
      return all;
    };
    ForwardCache cache;
    cache.balance_weight = w;
    Outputs out = model.forward(b, &cache, nullptr);
    Mat dlogits;
    softmax_cross_entropy(out.logits, b.labels, &dlogits);
    ParamList params = model.params();
    zero_grads(params);
    model.backward(b, dlogits, cache);
    GradTolerance tol;
    tol.nmax = 12;
    tol.abs = 2e-4;
    for (Param* p : params)  // a perturbation that changes a routing choice is a kink
      check_gradient(p->name, p->value, p->grad, loss, tol, skip_if_changes(p->value, tol.eps, routing));
  }
}

TEST_CASE("Shared blocks are stored once and counted as reused", "[model][sharing]") {
  for (bool share_attention : {false, true}) {
    INFO("share_attention " << share_attention);
    BertModel shared(layer_norm_moe_config("gate", 1, true, share_attention));
    BertModel copies(layer_norm_moe_config("gate", 1, false, false));
    int64_t own_projections = 0;
    for (Param* p : shared.params()) {
      CHECK(p->name.find("layer.1.moe.") == std::string::npos);
      own_projections += p->name.find("layer.1.attention.self.") != std::string::npos;
    }
    CHECK(own_projections == (share_attention ? 0 : 6));
    std::map<std::string, int> seen;
    for (Param* p : shared.params()) CHECK(++seen[p->name] == 1);
    CHECK(seen.count("bert.encoder.layer.1.output.LayerNorm.weight") == 1);
    CHECK(seen.count("bert.encoder.layer.1.attention.output.LayerNorm.weight") == 1);
    const ParamCounts s = count_params(shared), c = count_params(copies);
    CHECK(s.total == static_cast<int64_t>(count_values(shared.params())));
    CHECK(s.total < c.total);
    CHECK(s.total + s.shared_uses == c.total);
    CHECK(c.shared_uses == 0);
    const int64_t hidden = shared.config.hidden_size;
    const int64_t projections = share_attention ? 4 * (hidden * hidden + hidden) : 0;
    const int64_t moe_block = 3 * (2 * 8 * hidden + 8 + hidden) + 3 * hidden;  // experts + gate
    CHECK(s.shared_uses == projections + moe_block);
  }
}

TEST_CASE("Sharing needs per-layer LayerNorms and well-formed groups", "[model][sharing][config]") {
  auto bad = [](auto edit, const char* what) {
    BertConfig c = layer_norm_moe_config("gate", 1, true, false);
    edit(*c.moe);
    REQUIRE_THROWS_WITH(c.validate(), Catch::Contains(what));
  };
  bad([](MoeConfig& m) { m.norm = "expert"; }, "need moe.norm \"layer\"");
  bad([](MoeConfig& m) { m.norm = "post"; }, "moe.norm: unknown \"post\"");
  bad([](MoeConfig& m) { m.share_groups = {{0}}; }, "at least two layers");
  bad([](MoeConfig& m) { m.share_groups = {{0, 1}, {1, 2}}; }, "layer 1 is in two groups");
  bad([](MoeConfig& m) { m.share_groups = {{1, 0}}; }, "increasing");
  bad([](MoeConfig& m) { m.layers = {0, 2}; }, "layer 1 is not in moe.layers");
  bad([](MoeConfig& m) {
    m.share_groups.clear();
    m.share_attention = true;
  }, "moe.share_attention: needs moe.share_groups");
  BertConfig ok = layer_norm_moe_config("hash", 1, true, true);
  CHECK_NOTHROW(ok.validate());
  BertModel dense(tiny_config());  // set_moe attaches one FFN per layer; it does not build groups
  REQUIRE_THROWS_WITH(dense.set_moe(*ok.moe, {}), Catch::Contains("sharing groups are built by moefy"));
  CHECK(ok.moe->share_owner(1) == 0);
  CHECK(ok.moe->share_owner(2) == 2);
}

TEST_CASE("Backward's hook: stages partition params() and each stage's grads are final when it fires",
          "[model][sharing][parallel]") {
  // Data-parallel training starts a stage's allreduce from the hook; a grad that still changed
  // afterwards (e.g. a shared block placed in the wrong layer's stage) would be summed stale.
  for (int variant = 0; variant < 3; ++variant) {
    INFO("variant " << variant << " (0 dense, 1 shared MoE, 2 shared MoE + attention)");
    BertModel m(variant == 0 ? tiny_config() : layer_norm_moe_config("gate", 2, true, variant == 2));
    randomize(m, 11, 0.3);
    const auto stages = m.backward_stages();
    REQUIRE(stages.size() == m.layers.size() + 2);
    std::map<const Param*, int> seen;
    for (const auto& stage : stages)
      for (const Param* p : stage) ++seen[p];
    const ParamList all = m.params();
    CHECK(seen.size() == all.size());
    for (const Param* p : all) CHECK(seen[p] == 1);

    const Batch b = tiny_batch(m.config, {6, 3, 5}, 4);
    ForwardCache cache;
    cache.balance_weight = 0.3f;
    Rng dropout(5);
    const Outputs out = m.forward(b, &cache, &dropout);
    Mat dlogits;
    task_loss(m.config.task, out.logits, b, &dlogits);
    zero_grads(all);
    std::vector<size_t> fired;
    std::map<const Param*, Mat> at_hook;
    m.backward_hook = [&](size_t s) {
      fired.push_back(s);
      for (const Param* p : stages[s]) at_hook[p] = p->grad;
    };
    m.backward(b, dlogits, cache);
    m.backward_hook = nullptr;
    std::vector<size_t> expected(stages.size());
    for (size_t s = 0; s < expected.size(); ++s) expected[s] = s;
    CHECK(fired == expected);
    size_t reached = 0;  // grads the backward changed: a zero grad would prove nothing
    for (const Param* p : all) {
      INFO(p->name);
      REQUIRE(at_hook.count(p));
      CHECK(at_hook[p] == p->grad);
      reached += p->grad.size() > 0 && p->grad.cwiseAbs().maxCoeff() > 0;
    }
    CHECK(reached * 10 >= all.size() * 9);  // an expert or gate may get no token; nearly all get some
  }
}
