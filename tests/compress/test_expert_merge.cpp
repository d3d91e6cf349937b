// Expert scoring (usage, REAP), pruning to K and MC-SMoE merging to K on calibration data.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>

#include "compress/expert_merge.h"
#include "compress/moefy.h"
#include "tests/compress/moe_fixture.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

std::vector<io::EncodedExample> calibration_examples(int64_t vocab, int n, uint64_t seed) {
  std::vector<io::EncodedExample> out;
  Rng rng(seed);
  for (int i = 0; i < n; ++i) {
    io::EncodedExample e;
    for (int t = 0; t < 4 + i % 7; ++t)
      e.ids.push_back(t == 0 ? 2 : static_cast<int32_t>(5 + rng.below(static_cast<uint64_t>(vocab - 5))));
    e.type_ids.assign(e.ids.size(), 0);
    out.push_back(std::move(e));
  }
  return out;
}

// An upcycled model (every expert the same full FFN) whose experts' neurons are then shuffled:
// the same function, in different neuron orders.
std::unique_ptr<BertModel> permuted_upcycle(const std::string& router, int top_k) {
  BertConfig c = tiny_config();
  auto m = std::make_unique<BertModel>(c);
  randomize(*m, 17, 0.3);
  compress::MoefyOptions o;
  o.method = "upcycle";
  o.router = router;
  o.top_k = top_k;
  compress::moefy(*m, compress::resolve_moefy_options(o, c), nullptr, nullptr);
  Rng rng(3);
  for (auto& layer : m->layers)
    for (size_t e = 1; e < layer.moe->experts.size(); ++e) {
      ExpertFFN& x = layer.moe->experts[e];
      std::vector<int32_t> perm(static_cast<size_t>(x.size()));
      std::iota(perm.begin(), perm.end(), 0);
      for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[rng.below(i)]);
      const ExpertFFN src = x;
      for (Eigen::Index i = 0; i < x.size(); ++i) {
        const Eigen::Index j = perm[static_cast<size_t>(i)];
        x.intermediate.weight.value.row(i) = src.intermediate.weight.value.row(j);
        x.intermediate.bias.value(0, i) = src.intermediate.bias.value(0, j);
        x.output.weight.value.col(i) = src.output.weight.value.col(j);
      }
    }
  for (Param* p : m->params())
    if (p->name.find("router.weight") != std::string::npos) p->value *= 50.0f;
  return m;
}

}  // namespace

TEST_CASE("max_assignment finds the best matching (brute force on small matrices)", "[compress][merge]") {
  Rng rng(5);
  for (int n : {1, 2, 3, 5, 6}) {
    for (int rep = 0; rep < 5; ++rep) {
      const Mat s = random_mat(rng, n, n);
      const std::vector<int32_t> got = compress::max_assignment(s);
      std::vector<int32_t> perm(static_cast<size_t>(n));
      std::iota(perm.begin(), perm.end(), 0);
      double best = -1e30;
      do {
        double v = 0;
        for (int i = 0; i < n; ++i) v += s(i, perm[static_cast<size_t>(i)]);
        best = std::max(best, v);
      } while (std::next_permutation(perm.begin(), perm.end()));
      double v = 0;
      std::vector<int32_t> sorted = got;
      std::sort(sorted.begin(), sorted.end());
      for (int i = 0; i < n; ++i) {
        CHECK(sorted[static_cast<size_t>(i)] == i);  // a permutation
        v += s(i, got[static_cast<size_t>(i)]);
      }
      CHECK(v == Approx(best).epsilon(1e-6));
    }
  }
}

TEST_CASE("Merging permuted copies of one expert recovers it: the model is unchanged (hash, gate top-2)",
          "[compress][merge]") {
  for (auto [router, k] : {std::pair<const char*, int>{"hash", 1}, {"gate", 2}}) {
    INFO(router);
    auto m = permuted_upcycle(router, k);
    const Batch b = tiny_batch(m->config, {5, 9, 3}, 4);
    const Mat want = m->forward(b, nullptr, nullptr).logits;
    const auto cal = compress::calibrate_experts(*m, calibration_examples(m->config.vocab_size, 30, 6), 8);
    const int64_t removed = compress::merge_experts_to(*m, cal, k);
    CHECK(removed > 0);
    CHECK(m->layers[0].moe->n_experts() == k);
    CHECK(m->config.moe->layer_experts == std::vector<int64_t>{k, k});
    const Mat got = m->forward(b, nullptr, nullptr).logits;
    CHECK((got - want).cwiseAbs().maxCoeff() <= 1e-4f * (1.0f + want.cwiseAbs().maxCoeff()));
    int merged = 0;  // experts averaged from several lose their provenance
    for (const ExpertFFN& x : m->layers[1].moe->experts) merged += x.neuron_index[0] == -1;
    CHECK(merged >= 1);
  }
}

TEST_CASE("Expert scores: usage counts slots, REAP weighs gate x output norm; pruning keeps the best K",
          "[compress][merge]") {
  auto m = random_moe_model();  // 4 hash experts per layer
  // Expert 3 of layer 0 moves its tokens 100x more than the others.
  ExpertFFN& loud = m->layers[0].moe->experts[3];
  loud.output.weight.value *= 100.0f;
  loud.output.bias.value *= 100.0f;
  const auto examples = calibration_examples(m->config.vocab_size, 30, 7);
  const auto cal = compress::calibrate_experts(*m, examples, 8);
  const auto& c = cal.layers[0];
  int64_t tokens = 0;
  for (const auto& e : examples) tokens += static_cast<int64_t>(e.ids.size());
  CHECK(std::accumulate(c.usage.begin(), c.usage.end(), 0.0) == static_cast<double>(tokens));
  CHECK(std::max_element(c.reap.begin(), c.reap.end()) - c.reap.begin() == 3);
  CHECK(c.similarity.rows() == 4);
  CHECK(c.similarity(1, 1) == Approx(1.0));
  // REAP keeps the loud expert whatever its usage; usage keeps the most used.
  auto by_reap = random_moe_model();
  by_reap->layers[0].moe->experts[3] = loud;
  compress::prune_experts_to(*by_reap, cal, 1, "reap");
  CHECK(by_reap->layers[0].moe->experts[0].output.weight.value == loud.output.weight.value);
  auto by_usage = random_moe_model();
  compress::prune_experts_to(*by_usage, cal, 2, "usage");
  CHECK(by_usage->layers[1].moe->n_experts() == 2);
  for (int32_t e : std::get<HashRouter>(by_usage->layers[1].moe->router).table) CHECK((e == 0 || e == 1));
  const Batch b = tiny_batch(by_usage->config, {5, 9}, 4);
  CHECK(by_usage->forward(b, nullptr, nullptr).logits.allFinite());
  CHECK_THROWS_WITH(compress::prune_experts_to(*by_usage, cal, 1, "size"), Catch::Contains("usage or reap"));
}
