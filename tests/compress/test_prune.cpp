// export --prune: experts that no token selects on the data are removed; the routing of that data
// and, for hash and renormalised top-k gates, the logits stay exactly the same; a shared MoE FFN
// counts every layer's tokens; the new per-layer counts survive save and load.
#include <catch2/catch.hpp>

#include "compress/export.h"
#include "compress/prune.h"
#include "io/checkpoint.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

BertConfig moe_config(const std::string& router, int64_t experts, int64_t top_k) {
  BertConfig c = tiny_config();
  MoeConfig m;
  m.n_experts = experts;
  m.expert_size = 8;
  m.router = router;
  m.top_k = top_k;
  m.layers = {0, 1};
  c.moe = m;
  return c;
}

std::vector<std::vector<int64_t>> usage_of(const BertModel& m, const Batch& b) {
  return m.forward(b, nullptr, nullptr).expert_tokens;
}

}  // namespace

TEST_CASE("Pruning unused hash-routed experts keeps the logits on the data exactly", "[compress][prune]") {
  BertModel m(moe_config("hash", 4, 1));
  randomize(m, 3, 0.3);
  const Batch b = tiny_batch(m.config, {9, 6, 4}, 21);
  std::vector<bool> in_batch(40, false);
  for (int32_t id : b.ids) in_batch[static_cast<size_t>(id)] = true;
  int32_t absent = 39;
  while (in_batch[static_cast<size_t>(absent)]) --absent;
  // Layer 0: experts 0..2 only (and the absent token on 3); layer 1 keeps its seeded table.
  auto& table = std::get<HashRouter>(m.layers[0].moe->router).table;
  for (size_t id = 0; id < table.size(); ++id) table[id] = static_cast<int32_t>(id % 3);
  table[static_cast<size_t>(absent)] = 3;
  const Mat before = m.forward(b, nullptr, nullptr).logits;
  const auto usage = usage_of(m, b);
  REQUIRE(usage[0][3] == 0);

  const compress::PrunedExperts p = compress::prune_unused_experts(m, usage);
  REQUIRE(p.layers.size() >= 1);
  CHECK(p.layers[0].layer == 0);
  CHECK(p.layers[0].removed == std::vector<int64_t>{3});
  CHECK(p.parameters >= 2 * 8 * 16 + 8 + 16 + 2 * 16);
  CHECK(m.layers[0].moe->n_experts() == 3);
  CHECK(m.config.moe->experts_at(0) == 3);
  CHECK(m.layers[0].moe->experts[2].intermediate.weight.name == "bert.encoder.layer.0.moe.experts.2.intermediate.dense.weight");
  const int32_t busiest = table[static_cast<size_t>(absent)];
  CHECK(busiest >= 0);
  CHECK(busiest < 3);
  CHECK(m.forward(b, nullptr, nullptr).logits == before);

  // The new counts are part of the config: the model saves and loads back.
  const auto dir = scratch_dir("prune_hash");
  io::save_model(dir, m, nullptr, true);
  io::LoadedModel back = io::load_model(dir);
  CHECK(back.model->config.moe->layer_experts == m.config.moe->layer_experts);
  CHECK(back.model->forward(b, nullptr, nullptr).logits == before);
}

TEST_CASE("Pruning a top-2 gate's unused experts keeps the logits up to float rounding", "[compress][prune]") {
  BertModel m(moe_config("gate", 5, 2));
  randomize(m, 8, 0.3);
  // Rows +v, -v, +u, -u, 0: the two chosen logits are |v.x| and |u.x| >= 0, so expert 4 never runs.
  for (auto& layer : m.layers) {
    Mat& w = std::get<GateRouter>(layer.moe->router).weight.value;
    w.row(1) = -w.row(0);
    w.row(3) = -w.row(2);
    w.row(4).setZero();
  }
  const Batch b = tiny_batch(m.config, {7, 5}, 2);
  const Mat before = m.forward(b, nullptr, nullptr).logits;
  const compress::PrunedExperts p = compress::prune_unused_experts(m, usage_of(m, b));
  REQUIRE(p.layers.size() == 2);
  for (const auto& l : p.layers) {
    REQUIRE(!l.removed.empty());
    CHECK(l.removed.back() == 4);  // (one of +u, -u may be unused on this batch too)
    const int64_t left = m.layers[static_cast<size_t>(l.layer)].moe->n_experts();
    CHECK(left == 5 - static_cast<int64_t>(l.removed.size()));
    CHECK(std::get<GateRouter>(m.layers[static_cast<size_t>(l.layer)].moe->router).weight.value.rows() == left);
    CHECK(m.config.moe->experts_at(l.layer) == left);
  }
  // p_i / (p_i + p_j) of the chosen pair does not depend on the other logits; only the
  // softmax's float rounding does.
  const Mat after = m.forward(b, nullptr, nullptr).logits;
  CHECK((after - before).cwiseAbs().maxCoeff() <= 1e-5f);
}

TEST_CASE("Pruning keeps top_k experts and counts every layer of a shared MoE FFN", "[compress][prune]") {
  BertConfig c = moe_config("gate", 4, 2);
  c.moe->norm = "layer";
  c.moe->share_groups = {{0, 1}};
  BertModel m(c);
  // Layer 0 uses experts 0 and 1, layer 1 only expert 2: only expert 3 goes.
  compress::PrunedExperts p = compress::prune_unused_experts(m, {{5, 7, 0, 0}, {0, 0, 9, 0}});
  REQUIRE(p.layers.size() == 1);
  CHECK(p.layers[0].removed == std::vector<int64_t>{3});
  CHECK(m.layers[1].moe->n_experts() == 3);
  CHECK(m.config.moe->layer_experts == std::vector<int64_t>{3, 3});

  BertModel unused(moe_config("gate", 4, 2));
  p = compress::prune_unused_experts(unused, {{0, 0, 0, 0}, {3, 0, 0, 0}});
  CHECK(unused.layers[0].moe->n_experts() == 2);  // nothing used: the first top_k stay
  CHECK(unused.layers[1].moe->n_experts() == 2);  // expert 0 and one more to keep top-2 possible
}

TEST_CASE("moe.layer_experts is checked against layers, top_k and sharing", "[compress][prune][config]") {
  BertConfig c = moe_config("gate", 4, 2);
  c.moe->layer_experts = {4};
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("moe.layer_experts: 1 counts for 2 MoE layers"));
  c.moe->layer_experts = {1, 4};
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("moe.layer_experts: 1 is outside top_k..4"));
  c.moe->layer_experts = {3, 4};
  c.moe->norm = "layer";
  c.moe->share_groups = {{0, 1}};
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("share one MoE FFN but list different expert counts"));
}
