// The token-classification head (BertForTokenClassification): no pooler, the classifier on every
// token; its cross-entropy skips ignored positions; the whole model's backward through it.
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

BertConfig token_config() {
  BertConfig c = tiny_config();
  c.task = Task::token_classification;
  c.labels = {"B-PER", "I-PER", "O"};
  return c;
}

// Gold tags on the real tokens but the first of each sequence ([CLS]); ignored elsewhere.
void tag_tokens(Batch& b, uint64_t seed) {
  Rng rng(seed);
  b.token_labels.assign(static_cast<size_t>(b.n_tok()), Batch::kIgnoreToken);
  for (int64_t i = 0; i < b.n_tok(); ++i)
    if (b.mask[static_cast<size_t>(i)] && i % b.seq != 0) b.token_labels[static_cast<size_t>(i)] = static_cast<int>(rng.below(3));
}

}  // namespace

TEST_CASE("Token cross-entropy averages over the tagged tokens only", "[model][token]") {
  Mat z(3, 2);
  z << 0.0f, 0.0f, 1.0f, -1.0f, 5.0f, 5.0f;
  // Rows 0 and 1 count: -log(1/2) and -log(e^-1 / (e + e^-1)) = log(1 + e^2).
  const double expect = (std::log(2.0) + std::log1p(std::exp(2.0))) / 2;
  Mat g;
  CHECK(token_cross_entropy(z, {0, 1, Batch::kIgnoreToken}, &g) == Approx(expect));
  CHECK(g.row(2).cwiseAbs().maxCoeff() == 0.0f);
  CHECK(g(0, 0) == Approx(-0.25));  // (softmax - onehot) / 2 counted rows
  CHECK(token_cross_entropy(z, std::vector<int>(3, Batch::kIgnoreToken), &g) == 0.0);
  CHECK(g.cwiseAbs().maxCoeff() == 0.0f);
  CHECK_THROWS_WITH(token_cross_entropy(z, {0, 1}, nullptr), Catch::Contains("2 labels for 3 rows"));
}

TEST_CASE("A token head has no pooler and gives logits for every token", "[model][token]") {
  BertConfig c = token_config();
  BertModel model(c);
  randomize(model, 41, 0.3);
  for (const Param* p : model.params()) CHECK(p->name.find("pooler") == std::string::npos);
  Batch b = tiny_batch(c, {6, 3}, 42);
  const Outputs out = model.forward(b, nullptr, nullptr);
  CHECK(out.logits.rows() == b.n_tok());
  CHECK(out.logits.cols() == 3);
  // Each token's logits are the classifier applied to its own last hidden state.
  const Outputs full = model.forward(b, nullptr, nullptr, true);
  const Mat& h = full.hidden_states.back();
  for (Eigen::Index t = 0; t < h.rows(); ++t) {
    const RowVec want = h.row(t) * model.classifier.weight.value.transpose() + model.classifier.bias.value;
    CHECK((out.logits.row(t) - want).cwiseAbs().maxCoeff() < 1e-4f);
  }
}

TEST_CASE("Whole-model gradient through the token head matches finite differences", "[model][token][grad]") {
  for (bool train : {false, true}) {
    INFO("train " << train);
    BertConfig c = token_config();
    BertModel model(c);
    randomize(model, 43, 0.3);
    Batch b = tiny_batch(c, {6, 4, 5}, 44);
    b.labels.clear();
    tag_tokens(b, 45);
    const Rng drop(46);
    GradTolerance tol;
    tol.nmax = 12;
    tol.abs = 2e-4;
    check_model_gradient(
        model, b, [&](MatRef logits, Mat* d) { return task_loss(c.task, logits, b, d); }, train ? &drop : nullptr, tol);
  }
}

TEST_CASE("A sequence head is replaced by a token head and back", "[model][token]") {
  BertConfig c = tiny_config();
  BertModel model(c);
  randomize(model, 47, 0.3);
  Rng rng(48);
  model.replace_task_head({"B-X", "I-X", "O", "B-Y", "I-Y"}, rng, Task::token_classification);
  CHECK(model.config.per_token_head());
  CHECK(model.config.num_labels() == 5);
  Batch b = tiny_batch(model.config, {5}, 49);
  CHECK(model.forward(b, nullptr, nullptr).logits.rows() == 5);
  model.replace_task_head({"a", "b"}, rng, Task::single_label);
  CHECK(model.forward(b, nullptr, nullptr).logits.rows() == 1);
}
