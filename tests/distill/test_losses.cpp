// Distillation losses: every term's gradient against finite differences; KD of a student equal
// to its teacher is zero with zero gradient; frozen parameter groups do not move.
#include <unistd.h>

#include <catch2/catch.hpp>

#include "distill/distill_loss.h"
#include "distill/losses.h"
#include "io/dataset.h"
#include "io/wordpiece.h"
#include "tests/support/gradcheck.h"
#include "tests/support/synthetic_task.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::distill;
using namespace moekit::test;

TEST_CASE("Masked hidden MSE gradient matches finite differences and ignores padding", "[distill][grad]") {
  Rng rng(1);
  Mat s = random_mat(rng, 6, 5), t = random_mat(rng, 6, 5);
  const std::vector<uint8_t> mask = {1, 1, 0, 1, 0, 1};
  Mat g;
  masked_mse(s, t, mask, &g);
  check_gradient("student hidden", s, g, [&] { return masked_mse(s, t, mask, nullptr); });
  CHECK(g.row(2).isZero());
  CHECK(g.row(4).isZero());
  Mat t2 = t;
  t2.row(2).setConstant(100.0f);  // a padding row cannot change the loss
  CHECK(masked_mse(s, t2, mask, nullptr) == Approx(masked_mse(s, t, mask, nullptr)));
}

TEST_CASE("KD losses: gradients match finite differences for KL and symmetric KL at T = 1 and 2", "[distill][grad]") {
  for (KdKind kind : {KdKind::kl, KdKind::symmetric_kl}) {
    for (double T : {1.0, 2.0}) {
      INFO("kind " << static_cast<int>(kind) << " T " << T);
      Rng rng(2);
      Mat zs = random_mat(rng, 4, 3, 2.0), zt = random_mat(rng, 4, 3, 2.0);
      Mat g;
      kd_loss(zs, zt, kind, T, &g);
      GradTolerance tol;
      tol.eps = 1e-3f;
      tol.abs = 1e-4;
      check_gradient("student logits", zs, g, [&] { return kd_loss(zs, zt, kind, T, nullptr); }, tol);
      CHECK(kd_loss(zs, zt, kind, T, nullptr) > 0);
    }
  }
}

TEST_CASE("A student equal to its teacher has zero KD, hidden and attention loss and zero gradient", "[distill]") {
  BertConfig c = tiny_config();
  c.hidden_dropout_prob = 0;  // the student runs in train mode: without dropout it equals the teacher
  c.attention_probs_dropout_prob = 0;
  BertModel teacher(c), student(c);
  randomize(teacher, 51, 0.3);
  randomize(student, 51, 0.3);
  DistillOptions o;
  o.w_task = 0;
  o.w_balance = 0;
  o.w_attention = 1.0;
  Batch b = tiny_batch(c, {7, 4, 6}, 52);
  LossFn loss = distillation_loss(teacher, o, hidden_pairs("", 2, 2));
  zero_grads(student.params());
  Rng rng(1);
  const LossTerms t = loss(student, b, rng, 1.0f);
  CHECK(t.total == Approx(0).margin(1e-10));
  CHECK(t.terms.at("kd") == Approx(0).margin(1e-10));
  CHECK(t.terms.at("hidden") == Approx(0).margin(1e-10));
  CHECK(t.terms.at("attention") == Approx(0).margin(1e-10));
  for (Param* p : student.params()) {
    INFO(p->name);
    CHECK(p->grad.cwiseAbs().maxCoeff() <= 1e-6f);
  }
}

TEST_CASE("The whole distillation loss gradient matches finite differences", "[distill][grad]") {
 for (double w_attention : {0.0, 1.5}) {
  INFO("w_attention " << w_attention);
  BertConfig c = tiny_config();
  BertModel teacher(c), student(c);
  randomize(teacher, 53, 0.3);
  randomize(student, 54, 0.3);
  DistillOptions o;
  o.lambda = 2.0;
  o.temperature = 2.0;
  o.w_attention = w_attention;
  Batch b = tiny_batch(c, {7, 4, 6}, 55);
  LossFn loss = distillation_loss(teacher, o, hidden_pairs("", 2, 2));
  const Rng drop(9);
  zero_grads(student.params());
  Rng r = drop;
  loss(student, b, r, 1.0f);
  auto value = [&] {
    Rng d = drop;
    ParamList ps = student.params();
    std::vector<Mat> saved;
    for (Param* p : ps) saved.push_back(p->grad);
    const double v = loss(student, b, d, 1.0f).total;
    for (size_t i = 0; i < ps.size(); ++i) ps[i]->grad = saved[i];  // keep the analytic grads
    return v;
  };
  GradTolerance tol;
  tol.nmax = 12;
  tol.abs = 5e-4;
  for (Param* p : student.params()) check_gradient(p->name, p->value, p->grad, value, tol);
 }
}

TEST_CASE("Attention KL: zero for equal maps, its gradient is P_s - P_t over real query rows", "[distill][grad]") {
  // Two sequences (lengths 3 and 2 of 3), 2 heads: probabilities from random scores, padded keys 0.
  const int64_t seq = 3, heads = 2;
  const std::vector<uint8_t> mask = {1, 1, 1, 1, 1, 0};
  Rng rng(4);
  const Mat zs = random_mat(rng, 2 * heads * seq, seq), zt = random_mat(rng, 2 * heads * seq, seq);
  auto softmax = [&](const Mat& z) {
    Mat p = Mat::Zero(z.rows(), z.cols());
    for (Eigen::Index r = 0; r < z.rows(); ++r) {
      const int64_t b = r / (heads * seq), real = b == 0 ? 3 : 2;
      const Eigen::ArrayXf e = z.row(r).head(real).array().exp();
      p.row(r).head(real) = (e / e.sum()).matrix().transpose();
    }
    return p;
  };
  Mat z = zs;
  const Mat pt = softmax(zt);
  Mat grad;
  attention_kl(softmax(z), pt, mask, seq, heads, &grad);
  CHECK(grad.row(2 * seq + 2).isZero());  // sequence 1, head 0, the padded query row
  auto value = [&] { return attention_kl(softmax(z), pt, mask, seq, heads, nullptr); };
  // Only real keys have a gradient (padded ones are not in the softmax).
  check_gradient("scores", z, grad, value, {}, [&](Eigen::Index i) {
    const Eigen::Index r = i / seq, j = i % seq;
    return r >= heads * seq && j == 2;
  });
  CHECK(attention_kl(pt, pt, mask, seq, heads, nullptr) == Approx(0).margin(1e-12));
  REQUIRE_THROWS_WITH(attention_kl(pt, pt.topRows(6), mask, seq, heads, nullptr), Catch::Contains("same number of heads"));
}

TEST_CASE("Frozen parameter groups do not change during distillation", "[distill]") {
  const auto dir = scratch_dir("frozen");
  write_keyword_task(dir / "train.tsv", 64, 1);
  write_keyword_task(dir / "dev.tsv", 16, 2);
  BertConfig c = tiny_config();
  c.vocab_size = 48;
  c.labels = {"blue", "green", "red"};
  BertModel teacher(c), student(c);
  randomize(teacher, 56, 0.2);
  randomize(student, 57, 0.2);
  io::Vocab vocab = synthetic_vocab();
  io::WordPieceTokenizer tok(vocab, true);
  TrainData data;
  data.train = io::encode_examples(tok, io::read_dataset(dir / "train.tsv", c.labels, true), 24);
  data.dev = io::encode_examples(tok, io::read_dataset(dir / "dev.tsv", c.labels, true), 24);
  DistillOptions o;
  o.train.train = (dir / "train.tsv").string();
  o.train.dev = (dir / "dev.tsv").string();
  o.train.out = (dir / "out").string();
  o.train.max_steps = 3;
  o.train.batch_size = 16;
  o.train.lr = 1e-3;
  o.train_only = "attention,head";
  std::vector<Mat> before;
  for (Param* p : student.params()) before.push_back(p->value);
  const ParamList trainable = select_groups(student.params(), o.train_only);
  train(student, &vocab, true, data, o.train, distillation_loss(teacher, o, hidden_pairs("", 2, 2)), trainable);
  const ParamList all = student.params();
  for (size_t i = 0; i < all.size(); ++i) {
    const std::string group = param_group(all[i]->name);
    INFO(all[i]->name << " (" << group << ")");
    if (group == "attention" || group == "head")
      CHECK(all[i]->value != before[i]);
    else
      CHECK(all[i]->value == before[i]);
  }
  REQUIRE_THROWS_WITH(select_groups(all, "experts,bogus"), Catch::Contains("unknown group \"bogus\""));
  REQUIRE_THROWS_WITH(select_groups(all, "router"), Catch::Contains("selects no parameter"));
}

TEST_CASE("Layer maps pair the student's layers with the teacher's", "[distill]") {
  using P = std::vector<std::pair<int, int>>;
  CHECK(hidden_pairs("", 2, 2) == P{{0, 0}, {1, 1}, {2, 2}});
  CHECK(hidden_pairs("", 2, 4) == P{{0, 0}, {1, 2}, {2, 4}});
  CHECK(hidden_pairs("0:1,1:3", 2, 4) == P{{0, 0}, {1, 2}, {2, 4}});
  REQUIRE_THROWS_WITH(hidden_pairs("0:9", 2, 4), Catch::Contains("--layer-map"));
}
