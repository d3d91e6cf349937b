// Task heads: the regression (MSE) and multi-label (BCE with logits) losses against finite
// differences and hand-computed values, and the whole model's backward through each.
#include <catch2/catch.hpp>

#include <cmath>

#include "model/bert.h"
#include "model/error.h"
#include "model/loss.h"
#include "tests/support/gradcheck.h"
#include "tests/support/model_gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

TEST_CASE("MSE and BCE-with-logits match hand-computed values", "[model][task]") {
  Mat z(2, 2);
  z << 1.0f, -2.0f, 0.5f, 3.0f;
  // MSE: ((1-0)^2 + (-2+1)^2 + (0.5-0.5)^2 + (3-1)^2) / 4 = (1 + 1 + 0 + 4) / 4
  CHECK(mse_loss(z, {0, -1, 0.5f, 1}, nullptr) == Approx(1.5));
  // BCE of one logit z with target y: log(1 + e^z) - y z.
  Mat one(1, 2);
  one << 0.0f, 2.0f;
  const double expect = (std::log(2.0) - 0.0 + std::log1p(std::exp(2.0)) - 0.25 * 2.0) / 2;
  CHECK(bce_with_logits(one, {1.0f, 0.25f}, nullptr) == Approx(expect));
  // Stable far from 0: BCE(z = -100, y = 1) = 100, not inf.
  Mat far(1, 1);
  far << -100.0f;
  CHECK(bce_with_logits(far, {1.0f}, nullptr) == Approx(100.0));
  CHECK_THROWS_WITH(mse_loss(z, {0, 1}, nullptr), Catch::Contains("2 targets for [2, 2] logits"));
}

TEST_CASE("MSE and BCE gradients match finite differences", "[model][task][grad]") {
  Rng rng(3);
  Mat z = random_mat(rng, 4, 3, 2.0);
  std::vector<float> y(12), p(12);
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = static_cast<float>(rng.normal());
    p[i] = static_cast<float>(rng.uniform());
  }
  GradTolerance tol;
  tol.eps = 1e-3f;
  tol.abs = 1e-4;
  Mat g;
  mse_loss(z, y, &g);
  check_gradient("mse logits", z, g, [&] { return mse_loss(z, y, nullptr); }, tol);
  bce_with_logits(z, p, &g);
  check_gradient("bce logits", z, g, [&] { return bce_with_logits(z, p, nullptr); }, tol);
}

TEST_CASE("Whole-model gradient through the regression and multi-label heads matches finite differences",
          "[model][task][grad]") {
  for (Task task : {Task::regression, Task::multi_label}) {
    INFO(task_name(task));
    BertConfig c = tiny_config();
    c.task = task;
    if (task == Task::regression) c.labels = {"LABEL_0"};
    BertModel model(c);
    randomize(model, 31, 0.3);
    Batch b = tiny_batch(c, {6, 4, 5}, 17);
    b.labels.clear();
    Rng rng(5);
    for (int64_t i = 0; i < b.batch * c.num_labels(); ++i)
      b.targets.push_back(task == Task::regression ? static_cast<float>(rng.normal()) : static_cast<float>(rng.below(2)));
    GradTolerance tol;
    tol.nmax = 12;
    tol.abs = 2e-4;
    check_model_gradient(
        model, b, [&](MatRef logits, Mat* d) { return task_loss(c.task, logits, b, d); }, nullptr, tol);
  }
}

TEST_CASE("A regression config needs exactly one label; an unlabelled batch has no task loss", "[model][task]") {
  BertConfig c = tiny_config();
  c.task = Task::regression;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("expected num_labels 1, got 3"));
  CHECK(parse_task("multi_label_classification") == Task::multi_label);
  CHECK_THROWS_WITH(parse_task("ranking"), Catch::Contains("problem_type: unknown \"ranking\""));
  Batch b;
  Mat z = Mat::Zero(1, 1);
  CHECK_THROWS_WITH(task_loss(Task::regression, z, b, nullptr), Catch::Contains("labelled examples"));
}
