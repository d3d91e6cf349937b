// Regression and multi-label heads in distill/: metrics against hand-computed values, the KD
// terms' gradients against finite differences, and a student equal to its teacher scoring 0.
#include <catch2/catch.hpp>

#include <cmath>

#include "distill/distill_loss.h"
#include "distill/evaluate.h"
#include "distill/losses.h"
#include "distill/metrics.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::distill;
using namespace moekit::test;

TEST_CASE("Pearson and Spearman match hand-computed values, ties ranked by their mean", "[distill][task]") {
  // dx = (-1.5, -0.5, 0.5, 1.5), dy = (-3, -1, 0, 4): r = 11 / sqrt(5 * 26)
  CHECK(pearson({1, 2, 3, 4}, {2, 4, 5, 9}) == Approx(11 / std::sqrt(130.0)));
  CHECK(average_ranks({10, 30, 30, 20}) == std::vector<double>{1, 3.5, 3.5, 2});
  // ranks (1, 2, 3, 4) vs (1, 3.5, 3.5, 2): r = 1.5 / sqrt(5 * 4.5) = 1 / sqrt(10) (scipy agrees)
  const RegressionMetrics m = regression_metrics({1, 2, 3, 4}, {10, 30, 30, 20});
  CHECK(m.spearman == Approx(1 / std::sqrt(10.0)));
  CHECK(m.mse == Approx((81 + 784 + 729 + 256) / 4.0));
  CHECK(regression_metrics({1, 2, 3}, {5, 5, 5}).pearson == 0);  // constant gold: undefined, 0
  CHECK(regression_metrics({3, 1, 2}, {30, 10, 20}).spearman == Approx(1));
}

TEST_CASE("Multi-label micro/macro-F1 and exact-set accuracy match hand-computed values", "[distill][task]") {
  // label 0: tp 2; label 1: tp 2; label 2: fp 1, fn 1 -> per-label F1 1, 1, 0.
  const std::vector<uint8_t> gold = {1, 0, 1, 0, 1, 0, 1, 1, 0};
  const std::vector<uint8_t> pred = {1, 0, 0, 0, 1, 1, 1, 1, 0};
  const MultiLabelMetrics m = multilabel_metrics(pred, gold, 3);
  CHECK(m.micro_f1 == Approx(8.0 / 10.0));  // TP 4, FP 1, FN 1
  CHECK(m.macro_f1 == Approx(2.0 / 3.0));
  CHECK(m.subset_accuracy == Approx(1.0 / 3.0));
  CHECK_THROWS(multilabel_metrics(pred, {1, 0}, 3));
}

TEST_CASE("task_metrics reads regression values and multi-label sets from the examples", "[distill][task]") {
  InferenceResult r;
  r.logits.resize(3, 1);
  r.logits << 0.5f, 2.0f, 1.0f;
  std::vector<io::EncodedExample> ex(3);
  ex[0].targets = {0};
  ex[1].targets = {3};
  ex[2].targets = {1};
  const auto reg = task_metrics(Task::regression, r, ex);
  CHECK(reg.at("spearman") == Approx(1));
  CHECK(reg.at("mse") == Approx((0.25 + 1 + 0) / 3));
  r.logits.resize(2, 2);
  r.logits << 1.0f, -1.0f, 0.5f, 0.5f;  // predicted sets {0}, {0, 1}
  ex.resize(2);
  ex[0].targets = {1, 0};
  ex[1].targets = {0, 1};
  const auto ml = task_metrics(Task::multi_label, r, ex);
  CHECK(ml.at("micro_f1") == Approx(2.0 * 2 / (2 * 2 + 1 + 0)));
  CHECK(ml.at("accuracy") == Approx(0.5));
  CHECK(default_metric(Task::regression) == "pearson");
  ex[1].targets = {};
  CHECK_THROWS(task_metrics(Task::multi_label, r, ex));
}

TEST_CASE("Regression and multi-label KD terms: gradients match finite differences, zero at the teacher",
          "[distill][task][grad]") {
  for (Task task : {Task::regression, Task::multi_label}) {
    for (double T : {1.0, 2.0}) {
      if (task == Task::regression && T != 1.0) continue;
      INFO(task_name(task) << " T " << T);
      Rng rng(7);
      Mat zs = random_mat(rng, 4, 3, 2.0), zt = random_mat(rng, 4, 3, 2.0);
      Mat g;
      task_kd_loss(task, zs, zt, KdKind::symmetric_kl, T, &g);
      GradTolerance tol;
      tol.eps = 1e-3f;
      tol.abs = 1e-4;
      check_gradient("student logits", zs, g, [&] { return task_kd_loss(task, zs, zt, KdKind::kl, T, nullptr); }, tol);
      CHECK(task_kd_loss(task, zs, zt, KdKind::kl, T, nullptr) > 1e-3);
      CHECK(task_kd_loss(task, zt, zt, KdKind::kl, T, &g) == Approx(0).margin(1e-6));
      CHECK(g.cwiseAbs().maxCoeff() <= 1e-6f);
    }
  }
  Mat z = Mat::Zero(2, 1);
  CHECK_THROWS_WITH(task_kd_loss(Task::regression, z, z, KdKind::kl, 2.0, nullptr),
                    Catch::Contains("no distribution to soften"));
}

TEST_CASE("The distillation loss of a multi-label student matches finite differences", "[distill][task][grad]") {
  BertConfig c = tiny_config();
  c.task = Task::multi_label;
  BertModel teacher(c), student(c);
  randomize(teacher, 61, 0.3);
  randomize(student, 62, 0.3);
  DistillOptions o;
  o.lambda = 2.0;
  Batch b = tiny_batch(c, {6, 4, 5}, 63);
  b.labels.clear();
  b.targets = {1, 0, 1, 0, 0, 1, 1, 1, 0};
  LossFn loss = distillation_loss(teacher, o, hidden_pairs("", 2, 2));
  const Rng drop(9);
  zero_grads(student.params());
  Rng r = drop;
  const LossTerms terms = loss(student, b, r, 1.0f);
  CHECK(terms.terms.at("kd") > 0);
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
