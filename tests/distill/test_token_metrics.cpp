// Token classification in distill/: strict IOB2 entities and seqeval's micro P/R/F1 against
// hand-computed values, task_metrics over words, the per-token KD term and the whole distillation
// loss of a token student against finite differences.
#include <catch2/catch.hpp>

#include "distill/distill_loss.h"
#include "distill/entity_metrics.h"
#include "distill/evaluate.h"
#include "distill/losses.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::distill;
using namespace moekit::test;

TEST_CASE("Strict IOB2 chunks: I- continues only its own type; stray I- and other tags belong to no entity",
          "[distill][token]") {
  const std::vector<std::string> tags{"B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC", "I-PER", "B-ORG", "B-ORG"};
  const std::vector<Entity> e = iob2_entities(tags);
  REQUIRE(e.size() == 4);
  CHECK(e[0] == Entity{"PER", 0, 2});
  CHECK(e[1] == Entity{"LOC", 4, 6});  // the I-LOC at 3 follows O; the I-PER at 6 ends it
  CHECK(e[2] == Entity{"ORG", 7, 8});  // B- after B- of the same type opens a new entity
  CHECK(e[3] == Entity{"ORG", 8, 9});
  CHECK(iob2_entities({"O", "I-PER", "I-PER"}).empty());
  CHECK(iob2_entities({}).empty());
}

TEST_CASE("Entity precision, recall and F1 are micro over exact spans", "[distill][token]") {
  // Sentence 1: gold PER[0,2) LOC[3,4); predicted PER[0,1) (wrong span) LOC[3,4).
  // Sentence 2: gold ORG[1,2); predicted ORG[1,2) and PER[0,1).
  // gold 3, predicted 4, correct 2: P = 1/2, R = 2/3, F1 = 4/7; words 7, same tags 5.
  const EntityMetrics m = entity_metrics({{"B-PER", "O", "O", "B-LOC"}, {"B-PER", "B-ORG", "O"}},
                                         {{"B-PER", "I-PER", "O", "B-LOC"}, {"O", "B-ORG", "O"}});
  CHECK(m.gold_entities == 3);
  CHECK(m.predicted_entities == 4);
  CHECK(m.correct_entities == 2);
  CHECK(m.precision == Approx(0.5));
  CHECK(m.recall == Approx(2.0 / 3));
  CHECK(m.f1 == Approx(4.0 / 7));
  CHECK(m.token_accuracy == Approx(5.0 / 7));
  const EntityMetrics none = entity_metrics({{"O"}}, {{"O"}});
  CHECK(none.f1 == 0.0);  // undefined: 0, as seqeval (zero_division 0)
  CHECK(none.token_accuracy == 1.0);
  CHECK_THROWS_WITH(entity_metrics({{"O"}}, {{"O", "O"}}), Catch::Contains("1 predicted tags for 2 words"));
}

TEST_CASE("task_metrics reads each word's first-sub-token prediction", "[distill][token]") {
  const std::vector<std::string> labels{"B-PER", "I-PER", "O"};
  io::EncodedExample ex;
  ex.ids = {2, 10, 11, 12, 13, 3};  // [CLS] w0 w1 ##w1 w2 [SEP]
  ex.words = {"w0", "w1", "w2", "w3"};
  ex.word_starts = {1, 2, 4, -1};   // w3 was truncated
  ex.word_tags = {0, 1, 2, 2};
  ex.token_labels = {-100, 0, 1, -100, 2, -100};
  InferenceResult r;
  r.token_offset = {0, 6};
  r.token_logits = Mat::Zero(6, 3);
  r.token_logits(1, 0) = 1;  // w0 B-PER
  r.token_logits(2, 1) = 1;  // w1 I-PER
  r.token_logits(3, 0) = 9;  // ##w1: not read
  r.token_logits(4, 0) = 1;  // w2 B-PER (gold O)
  CHECK(word_predictions(r, ex, 0) == std::vector<int>{0, 1, 0, -1});
  const auto m = task_metrics(Task::token_classification, r, {ex}, labels);
  // Over the words with a token (w3 left out): predicted PER[0,2) PER[2,3), gold PER[0,2):
  // P 1/2, R 1; tags right on w0 and w1 of 3.
  CHECK(m.at("entity_precision") == Approx(0.5));
  CHECK(m.at("entity_recall") == Approx(1.0));
  CHECK(m.at("token_accuracy") == Approx(2.0 / 3));
  CHECK(default_metric(Task::token_classification) == "entity_f1");
}

TEST_CASE("Per-token KD: gradient matches finite differences, padding rows get none, zero at the teacher",
          "[distill][token][grad]") {
  const std::vector<uint8_t> mask{1, 1, 0, 1, 0};
  for (double T : {1.0, 2.0}) {
    INFO("T " << T);
    Rng rng(11);
    Mat zs = random_mat(rng, 5, 3, 2.0), zt = random_mat(rng, 5, 3, 2.0);
    Mat g;
    const double v = task_kd_loss(Task::token_classification, zs, zt, KdKind::kl, T, &g, &mask);
    CHECK(v > 1e-3);
    GradTolerance tol;
    tol.eps = 1e-3f;
    tol.abs = 1e-4;
    check_gradient("student token logits", zs, g,
                   [&] { return task_kd_loss(Task::token_classification, zs, zt, KdKind::kl, T, nullptr, &mask); }, tol);
    CHECK(g.row(2).cwiseAbs().maxCoeff() == 0.0f);
    CHECK(g.row(4).cwiseAbs().maxCoeff() == 0.0f);
    // Changing a padding row changes nothing.
    Mat zs2 = zs;
    zs2.row(2).setConstant(50);
    CHECK(task_kd_loss(Task::token_classification, zs2, zt, KdKind::kl, T, nullptr, &mask) == Approx(v));
    CHECK(task_kd_loss(Task::token_classification, zt, zt, KdKind::kl, T, &g, &mask) == Approx(0).margin(1e-6));
  }
}

TEST_CASE("The distillation loss of a token-classification student matches finite differences",
          "[distill][token][grad]") {
  BertConfig c = tiny_config();
  c.task = Task::token_classification;
  c.labels = {"B-X", "I-X", "O"};
  BertModel teacher(c), student(c);
  randomize(teacher, 71, 0.3);
  randomize(student, 72, 0.3);
  DistillOptions o;
  o.lambda = 2.0;
  Batch b = tiny_batch(c, {6, 4, 5}, 73);
  b.labels.clear();
  Rng tags(74);
  for (int64_t i = 0; i < b.n_tok(); ++i)
    b.token_labels.push_back(b.mask[static_cast<size_t>(i)] && i % b.seq ? static_cast<int>(tags.below(3))
                                                                          : Batch::kIgnoreToken);
  LossFn loss = distillation_loss(teacher, o, hidden_pairs("", 2, 2));
  const Rng drop(75);
  zero_grads(student.params());
  Rng r = drop;
  const LossTerms terms = loss(student, b, r, 1.0f);
  CHECK(terms.terms.at("kd") > 0);
  CHECK(terms.terms.at("task") > 0);
  auto value = [&] {
    Rng d = drop;
    ParamList ps = student.params();
    std::vector<Mat> saved;
    for (Param* p : ps) saved.push_back(p->grad);
    const double v = loss(student, b, d, 1.0f).total;
    for (size_t i = 0; i < ps.size(); ++i) ps[i]->grad = saved[i];
    return v;
  };
  GradTolerance tol;
  tol.nmax = 8;
  tol.abs = 5e-4;
  for (Param* p : student.params()) check_gradient(p->name, p->value, p->grad, value, tol);
}
