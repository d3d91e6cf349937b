// Extractive QA in distill/: SQuAD's normalisation, EM and F1 by hand; the best span over
// windows, its length limit and SQuAD 2.0's null answer; the span KD term's gradient.
#include <catch2/catch.hpp>

#include "distill/losses.h"
#include "distill/qa_metrics.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::distill;
using namespace moekit::test;

TEST_CASE("SQuAD answer normalisation, exact match and F1", "[distill][qa]") {
  CHECK(normalize_answer("The  Denver Broncos!") == "denver broncos");
  CHECK(normalize_answer("an apple, a pear") == "apple pear");
  CHECK(normalize_answer("theory") == "theory");
  // Python's str.lower() and str.split() are Unicode-aware: non-ASCII capitals fold, NBSP splits.
  CHECK(normalize_answer("\xc3\x89" "cole THE \xc3\x89T\xc3\x89") == "\xc3\xa9" "cole \xc3\xa9t\xc3\xa9");
  CHECK(normalize_answer("Denver\xc2\xa0" "Broncos") == "denver broncos");
  CHECK(exact_match("\xc3\x9c" "bung", {"\xc3\xbc" "bung"}) == 1.0);
  CHECK(exact_match("the Broncos", {"Denver Broncos", "Broncos."}) == 1.0);
  CHECK(exact_match("Denver", {"Denver Broncos"}) == 0.0);
  // "denver broncos team" vs "denver broncos": common 2, P 2/3, R 1, F1 0.8.
  CHECK(answer_f1("Denver Broncos team", {"Denver Broncos"}) == Approx(0.8));
  CHECK(answer_f1("Denver Broncos team", {"Denver Broncos", "Denver Broncos team"}) == Approx(1.0));  // the max
  CHECK(answer_f1("x y", {"y y"}) == Approx(0.5));  // counts are clipped: common 1, P 1/2, R 1/2
  // Unanswerable (no gold): 1 for the empty answer, 0 otherwise.
  CHECK(exact_match("", {}) == 1.0);
  CHECK(answer_f1("", {}) == 1.0);
  CHECK(answer_f1("Broncos", {}) == 0.0);
  CHECK(answer_f1("", {"Broncos"}) == 0.0);
}

namespace {

// A context of 4 words; feature tokens: [CLS] q [SEP] then context tokens of `words`, [SEP].
io::EncodedExample feature(const std::shared_ptr<const io::QaContext>& ctx, std::vector<int32_t> words) {
  io::EncodedExample x;
  x.qa = ctx;
  x.qa_example = 0;
  x.token_word = {-1, -1, -1};
  x.token_word.insert(x.token_word.end(), words.begin(), words.end());
  x.token_word.push_back(-1);
  x.ids.assign(x.token_word.size(), 5);
  return x;
}

}  // namespace

TEST_CASE("The best span: over every window, inside the context, at most max_answer_tokens", "[distill][qa]") {
  auto ctx = std::make_shared<io::QaContext>();
  ctx->context = "mr  John Smith runs";
  ctx->words = io::split_words(ctx->context);
  // Window 1 holds words 0-2 (Smith as two tokens), window 2 words 2-3.
  const io::EncodedExample a = feature(ctx, {0, 1, 2, 2}), b = feature(ctx, {2, 3});
  Mat za = Mat::Zero(8, 2), zb = Mat::Zero(6, 2);
  za(4, 0) = 3;  // start at "John"
  za(6, 1) = 3;  // end at Smith's second token
  za(1, 0) = 9;  // the question: never a start
  zb(4, 1) = 2;  // "runs" ends a span in window 2 (start there 0): 2 < 6
  QaDecodeOptions o;
  QaAnswer best = best_answer({&a, &b}, {za, zb}, o);
  CHECK(best.text == "John Smith");
  CHECK(best.begin == 4);
  CHECK(best.score == Approx(6));
  o.max_answer_tokens = 2;  // John .. Smith is 3 tokens: "John" + Smith's first token scores 3
  best = best_answer({&a, &b}, {za, zb}, o);
  CHECK(best.score == Approx(3));
  // SQuAD 2.0: the [CLS] span wins when its score (the smallest over windows) beats the best span.
  za(0, 0) = za(0, 1) = 4;
  zb(0, 0) = zb(0, 1) = 3.5f;
  o = {};
  o.null_answers = true;
  CHECK(best_answer({&a, &b}, {za, zb}, o).text == "");  // null 7 > 6
  o.null_threshold = 2;
  CHECK(best_answer({&a, &b}, {za, zb}, o).text == "John Smith");  // 7 - 6 <= 2
  o.null_answers = false;
  CHECK(best_answer({&a}, {za}, o).text == "John Smith");
}

TEST_CASE("QA KD: gradient matches finite differences, zero at the teacher, padding ignored", "[distill][qa][grad]") {
  Batch b;
  b.batch = 2;
  b.seq = 4;
  b.mask = {1, 1, 1, 1, 1, 1, 0, 0};
  for (double T : {1.0, 2.0}) {
    INFO("T " << T);
    Rng rng(81);
    Mat zs = random_mat(rng, 8, 2, 2.0), zt = random_mat(rng, 8, 2, 2.0);
    Mat g;
    const double v = task_kd_loss(Task::question_answering, zs, zt, KdKind::symmetric_kl, T, &g, &b);
    CHECK(v > 1e-3);
    GradTolerance tol;
    tol.eps = 1e-3f;
    tol.abs = 1e-4;
    check_gradient("student span logits", zs, g,
                   [&] { return task_kd_loss(Task::question_answering, zs, zt, KdKind::symmetric_kl, T, nullptr, &b); },
                   tol);
    CHECK(g.bottomRows(2).cwiseAbs().maxCoeff() == 0.0f);
    CHECK(task_kd_loss(Task::question_answering, zt, zt, KdKind::kl, T, &g, &b) == Approx(0).margin(1e-6));
  }
  Mat z = Mat::Zero(8, 2);
  CHECK_THROWS_WITH(task_kd_loss(Task::question_answering, z, z, KdKind::kl, 1, nullptr, nullptr),
                    Catch::Contains("needs the batch's shape"));
}
