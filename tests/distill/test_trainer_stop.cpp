// The trainer stops cleanly: SIGTERM/SIGINT write a checkpoint and name the step (the run then
// resumes to the same weights); a NaN/Inf loss or gradient stops before the update, keeping the
// last good checkpoint. The signal is raised from inside the loss, at a chosen step, so nothing
// depends on timing.
#include <omp.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <functional>
#include <limits>
#include <memory>

#include "distill/train_state.h"
#include "distill/trainer.h"
#include "io/dataset.h"
#include "io/wordpiece.h"
#include "tests/support/synthetic_task.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
using namespace moekit::distill;
namespace fs = std::filesystem;

namespace {

struct StopTask {
  fs::path dir;
  TrainData data;
  io::Vocab vocab = test::synthetic_vocab();
  BertConfig config;
  explicit StopTask(const std::string& name) : dir(test::scratch_dir("stop_" + name)) {
    config.vocab_size = 48;
    config.hidden_size = 16;
    config.num_hidden_layers = 1;
    config.num_attention_heads = 2;
    config.intermediate_size = 32;
    config.max_position_embeddings = 32;
    config.labels = {"blue", "green", "red"};
    test::write_keyword_task(dir / "train.tsv", 64, 1);
    test::write_keyword_task(dir / "dev.tsv", 16, 2);
    io::WordPieceTokenizer tok(vocab, true);
    data.train = io::encode_examples(tok, io::read_dataset(dir / "train.tsv", config.labels, true), 32);
    data.dev = io::encode_examples(tok, io::read_dataset(dir / "dev.tsv", config.labels, true), 32);
  }
  TrainOptions options(const std::string& out) const {
    TrainOptions o;
    o.train = (dir / "train.tsv").string();
    o.dev = (dir / "dev.tsv").string();
    o.out = (dir / out).string();
    o.batch_size = 8;
    o.lr = 1e-3;
    o.max_steps = 12;
    o.save_every = 4;
    o.eval_every = 6;
    o.max_seq_len = 32;
    return o;
  }
  std::unique_ptr<BertModel> model() const {
    auto m = std::make_unique<BertModel>(config);
    Rng rng(7);
    m->init_weights(rng);
    return m;
  }
};

// The task loss, then `after(n, model, terms)` on the n-th evaluation (one per step here: no
// gradient accumulation), which may raise a signal or poison the loss or a gradient.
LossFn hooked(std::function<void(int, BertModel&, LossTerms&)> after) {
  auto calls = std::make_shared<int>(0);
  LossFn base = task_loss_fn();
  return [=](BertModel& m, const Batch& b, Rng& r, float s) {
    LossTerms terms = base(m, b, r, s);
    after(++*calls, m, terms);
    return terms;
  };
}

}  // namespace

TEST_CASE("SIGTERM during training writes a checkpoint, names the step, and the run resumes", "[distill][signal]") {
  const StopTask t("term");
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  TrainOptions o = t.options("straight");
  auto straight = t.model();
  train(*straight, &t.vocab, true, t.data, o, task_loss_fn());

  TrainOptions oi = t.options("stopped");
  auto first = t.model();
  struct sigaction before {};
  sigaction(SIGTERM, nullptr, &before);  // Catch2's own handler, while a test runs
  const auto raise_at_7 = hooked([](int call, BertModel&, LossTerms&) {
    if (call == 7) std::raise(SIGTERM);  // handled by the trainer: the step finishes, then it stops
  });
  REQUIRE_THROWS_WITH(train(*first, &t.vocab, true, t.data, oi, raise_at_7),
                      Catch::Contains("stopped by SIGTERM after step 7 of 12; checkpoint saved, continue with --resume"));
  const auto latest = latest_checkpoint(oi.out);
  REQUIRE(latest);
  CHECK(latest->filename() == "step-00000007");
  CHECK_FALSE(fs::exists(fs::path(oi.out) / "DONE"));

  oi.resume = oi.out;
  auto second = t.model();
  train(*second, &t.vocab, true, t.data, oi, task_loss_fn());
  omp_set_num_threads(saved_threads);
  ParamList a = straight->params(), b = second->params();
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i]->name);
    REQUIRE(a[i]->value == b[i]->value);
  }
  // The trainer's handler is gone after train(): the previous one is back.
  struct sigaction now {};
  sigaction(SIGTERM, nullptr, &now);
  CHECK(now.sa_handler == before.sa_handler);
}

TEST_CASE("SIGINT stops training the same way", "[distill][signal]") {
  const StopTask t("int");
  TrainOptions o = t.options("out");
  auto m = t.model();
  const auto raise_at_2 = hooked([](int call, BertModel&, LossTerms&) {
    if (call == 2) std::raise(SIGINT);
  });
  REQUIRE_THROWS_WITH(train(*m, &t.vocab, true, t.data, o, raise_at_2), Catch::Contains("stopped by SIGINT after step 2"));
  CHECK(latest_checkpoint(o.out)->filename() == "step-00000002");
}

TEST_CASE("A NaN loss stops training at its step and keeps the last good checkpoint", "[distill][nan]") {
  const StopTask t("nan");
  TrainOptions o = t.options("out");
  auto m = t.model();
  const auto nan_at_6 = hooked([](int call, BertModel&, LossTerms& terms) {
    if (call == 6) terms.total = std::numeric_limits<double>::quiet_NaN();
  });
  REQUIRE_THROWS_WITH(train(*m, &t.vocab, true, t.data, o, nan_at_6), Catch::Contains("loss became NaN at step 6") &&
                                                                        Catch::Contains("step-00000004"));
  CHECK(latest_checkpoint(o.out)->filename() == "step-00000004");
}

TEST_CASE("An infinite gradient stops training before the update", "[distill][nan]") {
  const StopTask t("inf");
  TrainOptions o = t.options("out");
  auto m = t.model();
  const auto inf_grad_at_3 = hooked([](int call, BertModel& model, LossTerms&) {
    if (call == 3) model.params().front()->grad_buffer()(0, 0) = std::numeric_limits<float>::infinity();
  });
  REQUIRE_THROWS_WITH(train(*m, &t.vocab, true, t.data, o, inf_grad_at_3),
                      Catch::Contains("gradient norm became +Inf at step 3") &&
                          Catch::Contains("no checkpoint was written yet"));
  CHECK_FALSE(latest_checkpoint(o.out));
}
