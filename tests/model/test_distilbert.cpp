// DistilBERT (model_type distilbert): its Hugging Face names, no token types, no dropout after
// the attention projection, the pre_classifier -> ReLU -> classifier head; whole-model gradients
// through the sequence, regression and token heads; the one-full-expert MoE identity.
#include <catch2/catch.hpp>
#include <numeric>
#include <set>

#include "model/bert.h"
#include "model/error.h"
#include "model/loss.h"
#include "tests/support/model_gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

TEST_CASE("DistilBERT parameters carry DistilBERT's Hugging Face names, and no token type table", "[model][arch]") {
  const BertConfig c = tiny_distilbert_config();
  BertModel m(c);
  std::set<std::string> want = {"distilbert.embeddings.word_embeddings.weight",
                                "distilbert.embeddings.position_embeddings.weight",
                                "distilbert.embeddings.LayerNorm.weight", "distilbert.embeddings.LayerNorm.bias",
                                "pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"};
  for (int l = 0; l < 2; ++l)
    for (const char* part : {"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "sa_layer_norm",
                             "ffn.lin1", "ffn.lin2", "output_layer_norm"})
      for (const char* kind : {".weight", ".bias"})
        want.insert("distilbert.transformer.layer." + std::to_string(l) + "." + part + kind);
  std::set<std::string> got;
  for (Param* p : m.params()) got.insert(p->name);
  CHECK(got == want);
  CHECK_FALSE(m.embeddings.has_token_types());
  CHECK(m.layers[0].attention.hidden_dropout == 0);  // DistilBERT: no dropout on out_lin's output
  CHECK(m.layers[0].ffn.hidden_dropout == c.hidden_dropout_prob);
  CHECK(m.pooler.weight.value.rows() == c.hidden_size);

  Rng rng(3);
  m.init_weights(rng);  // HF init: every LayerNorm gain 1 (DistilBERT's are not named LayerNorm)
  CHECK(m.layers[1].attention.norm.weight.value.isOnes());
  CHECK(m.layers[1].ffn.norm.weight.value.isOnes());
  CHECK(m.layers[1].ffn.intermediate.weight.value.cwiseAbs().maxCoeff() > 0);
}

TEST_CASE("DistilBERT config invariants name DistilBERT's keys", "[model][arch]") {
  BertConfig c = tiny_distilbert_config();
  c.type_vocab_size = 2;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("DistilBERT has no token type embeddings"));
  c = tiny_distilbert_config();
  c.num_attention_heads = 3;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("dim 16 is not a multiple of n_heads 3"));
  c = tiny_distilbert_config();
  c.seq_classif_dropout = 1.0f;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("seq_classif_dropout: expected a value in [0, 1)"));
  BertConfig bert = tiny_config();
  bert.type_vocab_size = 0;  // only DistilBERT goes without token types
  CHECK_THROWS_WITH(bert.validate(), Catch::Contains("type_vocab_size: expected a positive integer"));
}

TEST_CASE("DistilBERT ignores token type ids", "[model][arch]") {
  BertConfig c = tiny_distilbert_config();
  BertModel m(c);
  randomize(m, 5, 0.3);
  Batch b = tiny_batch(c, {7, 4, 5}, 9);  // type ids 1 on the second half of each sequence
  REQUIRE(std::count(b.type_ids.begin(), b.type_ids.end(), 1) > 0);
  const Mat with_types = m.forward(b, nullptr, nullptr).logits;
  std::fill(b.type_ids.begin(), b.type_ids.end(), 0);
  CHECK(m.forward(b, nullptr, nullptr).logits == with_types);
}

namespace {

// Which pre_classifier outputs are positive: the ReLU's kinks, where finite differences across
// zero do not measure the derivative (those entries are skipped).
std::function<std::vector<int32_t>()> relu_pattern(const BertModel& model, const Batch& b, const Rng* drop) {
  return [&model, &b, drop] {
    ForwardCache cache;
    Rng d = drop ? *drop : Rng(0);
    model.forward(b, &cache, drop ? &d : nullptr);
    std::vector<int32_t> positive;
    for (Eigen::Index i = 0; i < cache.pooler_z.size(); ++i) positive.push_back(cache.pooler_z.data()[i] > 0);
    return positive;
  };
}

}  // namespace

TEST_CASE("DistilBERT whole-model gradients match finite differences (sequence, regression and token heads)",
          "[model][arch][grad]") {
  GradTolerance tol;
  tol.nmax = 12;
  tol.abs = 2e-4;  // the losses are means over a few rows: gradients are O(1e-2)
  const Rng drop(82);
  for (bool train : {false, true}) {
    INFO("sequence classification, train " << train);
    BertConfig c = tiny_distilbert_config();
    c.seq_classif_dropout = 0.3f;  // the head's own dropout, unlike BERT's hidden_dropout_prob
    BertModel model(c);
    randomize(model, 42, 0.3);
    Batch b = tiny_batch(c, {7, 4, 5}, 20);
    check_model_gradient(
        model, b, [&](MatRef logits, Mat* d) { return softmax_cross_entropy(logits, b.labels, d); },
        train ? &drop : nullptr, tol, relu_pattern(model, b, train ? &drop : nullptr));
  }
  {
    INFO("regression");
    BertConfig c = tiny_distilbert_config();
    c.task = Task::regression;
    c.labels = {"LABEL_0"};
    BertModel model(c);
    randomize(model, 43, 0.3);
    Batch b = tiny_batch(c, {6, 4, 5}, 21);
    b.labels.clear();
    b.targets = {0.5f, -1.0f, 2.0f};
    check_model_gradient(
        model, b, [&](MatRef logits, Mat* d) { return task_loss(c.task, logits, b, d); }, nullptr, tol,
        relu_pattern(model, b, nullptr));
  }
  for (bool train : {false, true}) {
    INFO("token classification, train " << train);
    BertConfig c = tiny_distilbert_config();
    c.task = Task::token_classification;
    BertModel model(c);
    randomize(model, 44, 0.3);
    CHECK(model.classifier.weight.name == "classifier.weight");
    Batch b = tiny_batch(c, {6, 3, 5}, 22);
    Rng rng(6);
    for (size_t i = 0; i < b.mask.size(); ++i)
      b.token_labels.push_back(b.mask[i] && i % 4 != 0 ? static_cast<int>(rng.below(3)) : Batch::kIgnoreToken);
    check_model_gradient(
        model, b, [&](MatRef logits, Mat* d) { return task_loss(c.task, logits, b, d); }, train ? &drop : nullptr,
        tol);
  }
}

TEST_CASE("DistilBERT with one full expert per layer equals the dense model", "[model][arch][moe]") {
  const BertConfig c = tiny_distilbert_config();
  BertModel dense(c), moe(c);
  randomize(dense, 45, 0.3);
  randomize(moe, 45, 0.3);
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
  CHECK(ffns[1].prefix == "distilbert.transformer.layer.1.moe.");
  moe.set_moe(cfg, std::move(ffns));
  CHECK(moe.layers[1].moe->experts[0].intermediate.weight.name ==
        "distilbert.transformer.layer.1.moe.experts.0.intermediate.dense.weight");
  Batch b = tiny_batch(c, {6, 4, 2}, 23);
  for (bool train : {false, true}) {
    INFO("train " << train);
    Rng d1(85), d2(85);
    CHECK(moe.forward(b, nullptr, train ? &d2 : nullptr).logits == dense.forward(b, nullptr, train ? &d1 : nullptr).logits);
  }
}
