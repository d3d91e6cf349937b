// The extractive-QA head (BertForQuestionAnswering): qa_outputs on every token with no dropout,
// the span loss (start and end cross-entropies over each sequence's real tokens) by hand and its
// gradient, and the whole model's backward through it.
#include <catch2/catch.hpp>

#include <cmath>

#include "model/bert.h"
#include "model/loss.h"
#include "tests/support/gradcheck.h"
#include "tests/support/model_gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

BertConfig qa_config() {
  BertConfig c = tiny_config();
  c.task = Task::question_answering;
  c.labels = {"LABEL_0", "LABEL_1"};
  return c;
}

}  // namespace

TEST_CASE("Span cross-entropy: start and end over each sequence's real tokens, halved", "[model][qa]") {
  Batch b;
  b.batch = 2;
  b.seq = 3;
  b.mask = {1, 1, 1, 1, 1, 0};  // the second sequence has 2 tokens
  b.start_positions = {1, 0};
  b.end_positions = {2, 1};
  Mat z = Mat::Zero(6, 2);
  z(1, 0) = 1;   // sequence 0 start logits (0, 1, 0)
  z(5, 0) = 50;  // padding: must not count
  z(5, 1) = 50;
  // seq 0: start -log(e / (e + 2)), end -log(1/3); seq 1: start -log(1/2), end -log(1/2).
  const double expect = 0.5 * ((std::log(std::exp(1.0) + 2) - 1 + std::log(2.0)) / 2 + (std::log(3.0) + std::log(2.0)) / 2);
  Mat g;
  CHECK(span_cross_entropy(z, b, &g) == Approx(expect));
  CHECK(g.row(5).cwiseAbs().maxCoeff() == 0.0f);
  GradTolerance tol;
  tol.eps = 1e-3f;
  tol.abs = 1e-4;
  check_gradient("span logits", z, g, [&] { return span_cross_entropy(z, b, nullptr); }, tol);
  b.start_positions = {1};
  CHECK_THROWS_WITH(span_cross_entropy(z, b, nullptr), Catch::Contains("1 gold spans for 2 sequences"));
}

TEST_CASE("A QA head is qa_outputs on every token, without pooler or dropout", "[model][qa]") {
  BertConfig c = qa_config();
  BertModel model(c);
  randomize(model, 51, 0.3);
  CHECK(model.classifier.weight.name == "qa_outputs.weight");
  for (const Param* p : model.params()) CHECK(p->name.find("pooler") == std::string::npos);
  Batch b = tiny_batch(c, {6, 3}, 52);
  ForwardCache cache;
  Rng drop(53);
  model.forward(b, &cache, &drop);
  CHECK(cache.pooled_mask.size() == 0);  // no dropout before qa_outputs in train mode
  c.labels = {"a", "b", "c"};
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("expected num_labels 2"));
}

TEST_CASE("Whole-model gradient through the QA head matches finite differences", "[model][qa][grad]") {
  for (bool train : {false, true}) {
    INFO("train " << train);
    BertConfig c = qa_config();
    BertModel model(c);
    randomize(model, 54, 0.3);
    Batch b = tiny_batch(c, {6, 4, 5}, 55);
    b.labels.clear();
    b.start_positions = {2, 1, 0};
    b.end_positions = {4, 3, 0};
    const Rng drop(56);
    GradTolerance tol;
    tol.nmax = 12;
    tol.abs = 2e-4;
    check_model_gradient(
        model, b, [&](MatRef logits, Mat* d) { return task_loss(c.task, logits, b, d); }, train ? &drop : nullptr, tol);
  }
}
