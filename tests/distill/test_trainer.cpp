// The trainer: learns a generated task, loss goes down, AdamW skips decay where it should,
// and a run interrupted mid-way and resumed ends with bit-identical weights.
#include <omp.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "distill/adamw.h"
#include "distill/schedule.h"
#include "distill/train_state.h"
#include "distill/trainer.h"
#include "io/dataset.h"
#include "io/safetensors.h"
#include "io/wordpiece.h"
#include "tests/support/gradcheck.h"
#include "tests/support/synthetic_task.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
using namespace moekit::distill;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return test::scratch_dir("train_" + name); }

BertConfig small_config() {
  BertConfig c;
  c.vocab_size = 48;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 64;
  c.max_position_embeddings = 32;
  c.labels = {"blue", "green", "red"};
  return c;
}

struct KeywordTask {
  fs::path dir;
  TrainData data;
  io::Vocab vocab = test::synthetic_vocab();
};

KeywordTask make_task(const std::string& name, int n_train, int n_dev) {
  KeywordTask t;
  t.dir = fresh_dir(name);
  test::write_keyword_task(t.dir / "train.tsv", n_train, 1);
  test::write_keyword_task(t.dir / "dev.tsv", n_dev, 2);
  io::WordPieceTokenizer tok(t.vocab, true);
  const auto labels = small_config().labels;
  t.data.train = io::encode_examples(tok, io::read_dataset(t.dir / "train.tsv", labels, true), 32);
  t.data.dev = io::encode_examples(tok, io::read_dataset(t.dir / "dev.tsv", labels, true), 32);
  return t;
}

TrainOptions options_for(const KeywordTask& t, const std::string& out) {
  TrainOptions o;
  o.train = (t.dir / "train.tsv").string();
  o.dev = (t.dir / "dev.tsv").string();
  o.out = (t.dir / out).string();
  o.batch_size = 16;
  o.lr = 1e-3;
  o.warmup_ratio = 0.1;
  o.log_every = 5;
  o.max_seq_len = 32;
  return o;
}

std::vector<double> logged(const fs::path& metrics, const std::string& key) {
  std::ifstream in(metrics);
  std::vector<double> v;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains(key)) v.push_back(j[key].get<double>());
  }
  return v;
}

}  // namespace

TEST_CASE("Training a small BERT learns the keyword task far above chance", "[distill][train]") {
  KeywordTask t = make_task("learn", 600, 150);
  BertModel model(small_config());
  Rng rng(3);
  model.init_weights(rng);
  TrainOptions o = options_for(t, "out");
  o.epochs = 4;
  const TrainResult r = train(model, &t.vocab, true, t.data, o, task_loss_fn());
  INFO("best dev accuracy " << r.best_metric);
  CHECK(r.best_metric >= 0.9);  // chance is 1/3
  const auto losses = logged(fs::path(o.out) / "metrics.jsonl", "loss");
  REQUIRE(losses.size() >= 4);
  CHECK(losses.back() < 0.5 * losses.front());
  // The best model is a normal model directory next to metrics.jsonl.
  CHECK(fs::exists(fs::path(o.out) / "model.safetensors"));
  CHECK(fs::exists(fs::path(o.out) / "config.json"));
  CHECK(fs::exists(fs::path(o.out) / "DONE"));
}

TEST_CASE("bf16 training learns the keyword task as fp32 does, with fp32 weights saved", "[distill][train][bf16]") {
  // The same run at both precisions, from one init. bf16 rounds every matrix product's operands
  // (model/matmul.h) but keeps fp32 master weights and AdamW state, so it must reach the same dev
  // accuracy (within 1 point), train a slightly different model, and save fp32 tensors.
  KeywordTask t = make_task("bf16", 600, 150);
  TrainResult results[2];
  std::unique_ptr<BertModel> models[2];
  const char* precisions[2] = {"fp32", "bf16"};
  for (int i = 0; i < 2; ++i) {
    models[i] = std::make_unique<BertModel>(small_config());
    Rng rng(3);
    models[i]->init_weights(rng);
    TrainOptions o = options_for(t, std::string("out_") + precisions[i]);
    o.epochs = 4;
    o.precision = precisions[i];
    results[i] = train(*models[i], &t.vocab, true, t.data, o, task_loss_fn());
  }
  INFO("best dev accuracy fp32 " << results[0].best_metric << ", bf16 " << results[1].best_metric);
  CHECK(results[1].best_metric >= 0.9);
  CHECK(std::abs(results[1].best_metric - results[0].best_metric) <= 0.01);
  CHECK(models[0]->classifier.weight.value != models[1]->classifier.weight.value);  // bf16 really ran
  const io::SafetensorsFile saved = io::read_safetensors(t.dir / "out_bf16" / "model.safetensors");
  for (const auto& [name, tensor] : saved.tensors) {
    INFO(name);
    CHECK(tensor.dtype == io::DType::F32);
  }
}

TEST_CASE("AdamW decays weights but not biases or LayerNorm parameters", "[distill]") {
  BertModel model(small_config());
  Rng rng(4);
  model.init_weights(rng);
  for (Param* p : model.params()) p->value.setConstant(0.5f);
  zero_grads(model.params());
  AdamW adam(model.params(), {0.9f, 0.999f, 1e-8f, 0.1f});
  adam.step(0.01f);  // zero grads: only decay can move a parameter
  for (Param* p : model.params()) {
    INFO(p->name);
    const bool is_bias_or_norm = p->vector;
    CHECK(p->decay == !is_bias_or_norm);
    const float want = is_bias_or_norm ? 0.5f : 0.5f * (1.0f - 0.01f * 0.1f);
    CHECK(p->value(0, 0) == Approx(want).epsilon(1e-6));
  }
}

TEST_CASE("Linear schedule warms up then decays to zero", "[distill]") {
  LinearSchedule s{1.0, 10, 110};
  CHECK(s.at(0) == 0.0);
  CHECK(s.at(5) == Approx(0.5));
  CHECK(s.at(10) == Approx(1.0));
  CHECK(s.at(60) == Approx(0.5));
  CHECK(s.at(110) == 0.0);
}

TEST_CASE("Global-norm clipping scales gradients to the limit", "[distill]") {
  Param a, b;
  a.init("a", 1, 2, true);
  b.init("b", 1, 1, true);
  a.grad_buffer() << 3, 0;
  b.grad_buffer() << 4;
  const double norm = clip_grad_norm({&a, &b}, 1.0);
  CHECK(norm == Approx(5.0));
  CHECK(a.grad(0, 0) == Approx(0.6).epsilon(1e-5));
  CHECK(b.grad(0, 0) == Approx(0.8).epsilon(1e-5));
}

// Over 32k entries the squared norm is summed in parallel blocks: the value must not depend on
// the thread count (a resumed or re-run training clips identically) and must match a serial
// double sum to double round-off.
TEST_CASE("Global-norm clipping of many gradients is thread-count independent", "[distill][threads]") {
  Param a, b;
  a.init("a", 300, 257, true);  // 77,100 entries: three blocks, the last partial
  b.init("b", 1, 5, true);
  Rng rng(3);
  a.grad_buffer() = test::random_mat(rng, 300, 257, 1.0);
  b.grad_buffer() = test::random_mat(rng, 1, 5, 1.0);
  double expected = 0;
  for (const Param* p : {&a, &b})
    for (Eigen::Index k = 0; k < p->grad.size(); ++k) expected += double(p->grad.data()[k]) * p->grad.data()[k];
  expected = std::sqrt(expected);
  const Mat a0 = a.grad, b0 = b.grad;
  const int threads = omp_get_max_threads();
  std::vector<double> norms;
  std::vector<Mat> clipped;
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    a.grad = a0, b.grad = b0;
    norms.push_back(clip_grad_norm({&a, &b}, 1.0));
    clipped.push_back(a.grad);
  }
  omp_set_num_threads(threads);
  CHECK(norms[0] == Approx(expected).epsilon(1e-12));
  CHECK(norms[1] == norms[0]);
  CHECK(norms[2] == norms[0]);
  CHECK(clipped[1] == clipped[0]);
  CHECK(clipped[0].isApprox(a0 / static_cast<float>(expected), 1e-5f));
}

TEST_CASE("A run interrupted mid-way and resumed ends with bit-identical weights", "[distill][resume]") {
  const std::string precision = GENERATE("fp32", "bf16");  // bf16: fp32 checkpoints resume it too
  INFO("precision " << precision);
  KeywordTask t = make_task("resume_" + precision, 160, 40);
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);  // bit-identity is claimed per thread count; 1 keeps the test strict
  auto fresh_model = [] {
    auto m = std::make_unique<BertModel>(small_config());
    Rng rng(5);
    m->init_weights(rng);
    return m;
  };
  TrainOptions o = options_for(t, "straight");
  o.precision = precision;
  o.max_steps = 24;
  o.save_every = 5;
  o.eval_every = 8;
  auto straight = fresh_model();
  train(*straight, &t.vocab, true, t.data, o, task_loss_fn());

  // Same run, killed (an exception from inside the loss) during step 13, then resumed.
  TrainOptions oi = o;
  oi.out = (t.dir / "interrupted").string();
  int calls = 0;
  LossFn base = task_loss_fn();
  LossFn crashing = [&](BertModel& m, const Batch& b, Rng& r, float s) {
    if (++calls == 13) throw std::runtime_error("simulated kill");
    return base(m, b, r, s);
  };
  auto first = fresh_model();
  REQUIRE_THROWS_WITH(train(*first, &t.vocab, true, t.data, oi, crashing), "simulated kill");
  auto latest = latest_checkpoint(oi.out);
  REQUIRE(latest);
  CHECK(latest->filename() == "step-00000010");
  auto second = fresh_model();
  oi.resume = oi.out;
  train(*second, &t.vocab, true, t.data, oi, task_loss_fn());
  omp_set_num_threads(saved_threads);

  ParamList a = straight->params(), b = second->params();
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i]->name);
    REQUIRE(a[i]->value == b[i]->value);  // exact equality
  }
  // The metrics of the resumed run have one line per logged step, none repeated.
  const auto steps = logged(fs::path(oi.out) / "metrics.jsonl", "step");
  const auto steps_straight = logged(fs::path(o.out) / "metrics.jsonl", "step");
  CHECK(steps == steps_straight);
}

TEST_CASE("Bad training options are refused before any work", "[distill]") {
  KeywordTask t = make_task("badopts", 20, 10);
  TrainOptions o = options_for(t, "out");
  auto expect = [&](auto edit, const std::string& phrase) {
    TrainOptions bad = o;
    edit(bad);
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains(phrase));
  };
  expect([](TrainOptions& x) { x.lr = -1e-4; }, "--lr must be in (0, 1)");
  expect([](TrainOptions& x) { x.batch_size = 0; }, "--batch-size must be positive");
  expect([&](TrainOptions& x) { x.dev = (t.dir / "missing.tsv").string(); }, "missing.tsv: no such file (--dev)");
  expect([](TrainOptions& x) { x.metric = "bleu"; }, "--metric must be accuracy, macro_f1, micro_f1, pearson");
  // Labels outside the model's label set: the dataset reader names the line.
  std::ofstream(t.dir / "odd.tsv") << "label\ttext\npurple\tw1 w2\n";
  REQUIRE_THROWS_WITH(io::read_dataset(t.dir / "odd.tsv", small_config().labels, true),
                      Catch::Contains("odd.tsv: line 2: unknown label"));
}
