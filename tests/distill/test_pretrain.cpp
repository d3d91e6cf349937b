// Masked-LM pretraining: the masking statistics (80/10/10 at 15%, whole words, special tokens
// never touched), the whole-model MLM gradient against finite differences, a resumed run equal
// to an uninterrupted one, and the switch from a pretrained encoder to a task model.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>

#include "distill/pretrain.h"
#include "distill/train_state.h"
#include "io/dataset.h"
#include "io/wordpiece.h"
#include "model/loss.h"
#include "tests/support/gradcheck.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::distill;
namespace fs = std::filesystem;

namespace {

// [PAD] [UNK] [CLS] [SEP] [MASK], then words w0..w29, then pieces ##p0..##p9.
io::Vocab mlm_vocab() {
  std::vector<std::string> t{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int i = 0; i < 30; ++i) t.push_back("w" + std::to_string(i));
  for (int i = 0; i < 10; ++i) t.push_back("##p" + std::to_string(i));
  return io::Vocab::from_tokens(t);
}

// `n` sequences [CLS] ... [SEP] with padding after; every third token a ## piece.
Batch random_batch(int n, int seq, uint64_t seed) {
  Rng rng(seed);
  Batch b;
  b.batch = n;
  b.seq = seq;
  for (int i = 0; i < n; ++i) {
    const int len = 4 + static_cast<int>(rng.below(static_cast<uint64_t>(seq - 3)));
    for (int t = 0; t < seq; ++t) {
      int32_t id = 0;
      if (t == 0) id = 2;
      else if (t == len - 1) id = 3;
      else if (t < len - 1) id = t % 3 == 2 ? 35 + static_cast<int32_t>(rng.below(10)) : 5 + static_cast<int32_t>(rng.below(30));
      b.ids.push_back(id);
      b.type_ids.push_back(0);
      b.mask.push_back(t < len ? 1 : 0);
    }
  }
  return b;
}

BertConfig mlm_config() {
  BertConfig c = test::tiny_config();
  c.vocab_size = 45;
  return c;
}

}  // namespace

TEST_CASE("Masking predicts 15% of the tokens, 80/10/10, never a special token", "[distill][mlm]") {
  const io::Vocab vocab = mlm_vocab();
  const MaskVocab mv = MaskVocab::from_vocab(vocab);
  CHECK(mv.mask_id == 4);
  CHECK(mv.replacements.size() == 40);
  for (bool whole_word : {false, true}) {
    INFO("whole word " << whole_word);
    MaskingOptions o;
    o.whole_word = whole_word;
    int64_t candidates = 0, chosen = 0, masked = 0, replaced = 0, kept = 0;
    for (uint64_t s = 0; s < 400; ++s) {
      const Batch clean = random_batch(8, 40, s);
      Batch b = clean;
      Rng rng(1000 + s);
      const MaskedTokens m = mask_batch(b, mv, o, rng);
      for (int64_t r = 0; r < clean.n_tok(); ++r) {
        const int32_t id = clean.ids[static_cast<size_t>(r)];
        const bool cand = clean.mask[static_cast<size_t>(r)] && id > 4;
        candidates += cand;
        const bool is_chosen = std::binary_search(m.rows.begin(), m.rows.end(), r);
        if (!is_chosen) {
          REQUIRE(b.ids[static_cast<size_t>(r)] == id);  // untouched
          continue;
        }
        REQUIRE(cand);  // specials and padding are never chosen
        ++chosen;
        const int32_t now = b.ids[static_cast<size_t>(r)];
        if (now == 4) ++masked;
        else if (now != id) ++replaced;
        else ++kept;
        REQUIRE(now != 0);
        REQUIRE((now == 4 || now > 4));  // a random replacement is never special
      }
      for (size_t i = 0; i < m.rows.size(); ++i) REQUIRE(m.targets[i] == clean.ids[static_cast<size_t>(m.rows[i])]);
      // Per sequence: round(15% of its candidates), at least one; whole words may end one short
      // (a word that would overshoot is skipped) or one over (a lone first word of two pieces).
      for (int64_t seq = 0; seq < clean.batch; ++seq) {
        int64_t n = 0, c = 0;
        for (int64_t t = 0; t < clean.seq; ++t) {
          const int64_t r = seq * clean.seq + t;
          n += clean.mask[static_cast<size_t>(r)] && clean.ids[static_cast<size_t>(r)] > 4;
          c += std::binary_search(m.rows.begin(), m.rows.end(), r);
        }
        const int64_t want = std::max<int64_t>(1, std::llround(0.15 * static_cast<double>(n)));
        if (whole_word)
          REQUIRE(std::abs(c - want) <= 1);
        else
          REQUIRE(c == want);
      }
      if (whole_word) {
        // A chosen word takes its ## pieces: a piece is chosen iff the token before it is.
        for (int64_t r = 1; r < clean.n_tok(); ++r) {
          const int32_t id = clean.ids[static_cast<size_t>(r)];
          if (id < 35 || !clean.mask[static_cast<size_t>(r)]) continue;
          const bool here = std::binary_search(m.rows.begin(), m.rows.end(), r);
          const bool before = std::binary_search(m.rows.begin(), m.rows.end(), r - 1);
          REQUIRE(here == before);
        }
      }
    }
    INFO(chosen << " of " << candidates << " chosen; " << masked << " masked, " << replaced << " replaced, " << kept << " kept");
    // Rounding per sequence moves the overall rate a little off 15%.
    CHECK(static_cast<double>(chosen) / candidates == Approx(0.15).margin(0.02));
    // ~9k chosen tokens: the binomial standard deviation of each fraction is below 0.5%.
    CHECK(static_cast<double>(masked) / chosen == Approx(0.8).margin(0.02));
    // A random replacement may draw the original token (1 in 40), counted as kept.
    CHECK(static_cast<double>(replaced + kept) / chosen == Approx(0.2).margin(0.02));
    CHECK(static_cast<double>(kept) / chosen == Approx(0.1 + 0.1 / 40).margin(0.015));
  }
}

TEST_CASE("Masking is a function of the Rng: same seed, same mask; new seed, new mask", "[distill][mlm]") {
  const MaskVocab mv = MaskVocab::from_vocab(mlm_vocab());
  const Batch clean = random_batch(4, 30, 7);
  Batch a = clean, b = clean, c = clean;
  Rng ra(5), rb(5), rc(6);
  const auto ma = mask_batch(a, mv, {}, ra), mb = mask_batch(b, mv, {}, rb), mc = mask_batch(c, mv, {}, rc);
  CHECK(ma.rows == mb.rows);
  CHECK(a.ids == b.ids);
  CHECK(ma.rows != mc.rows);
  // Without [MASK] in the vocabulary masking is refused with the file's name.
  REQUIRE_THROWS_WITH(MaskVocab::from_vocab(io::Vocab::from_tokens({"[PAD]", "a", "b"})), Catch::Contains("no [MASK] token"));
}

TEST_CASE("Whole-model MLM gradient matches finite differences", "[distill][mlm][grad]") {
  const BertConfig c = mlm_config();
  BertModel model(c);
  test::randomize(model, 41, 0.3);
  Rng head_rng(42);
  model.add_mlm_head(head_rng);
  for (Param* p : model.params())
    if (p->name.rfind("cls.", 0) == 0 && !p->vector) p->value = test::random_mat(head_rng, p->value.rows(), p->value.cols(), 0.3);
  const MaskVocab mv = MaskVocab::from_vocab(mlm_vocab());
  Batch b = random_batch(3, 9, 43);
  Rng mask_rng(44);
  MaskingOptions mo;
  mo.rate = 0.4;
  const MaskedTokens masked = mask_batch(b, mv, mo, mask_rng);
  REQUIRE(masked.rows.size() >= 3);
  const Rng drop(45);
  auto loss = [&] {
    Rng d = drop;
    // Same forward as mlm_step, loss only: the model's forward plus the head on the masked rows.
    const Outputs out = model.forward(b, nullptr, &d, true);
    Mat h(static_cast<Eigen::Index>(masked.rows.size()), c.hidden_size);
    for (size_t i = 0; i < masked.rows.size(); ++i) h.row(static_cast<Eigen::Index>(i)) = out.hidden_states.back().row(masked.rows[i]);
    Mat logits;
    model.mlm->forward(h, model.embeddings.word, logits, nullptr);
    return softmax_cross_entropy(logits, masked.targets, nullptr);
  };
  ParamList params = model.params();
  zero_grads(params);
  Rng d = drop;
  const double value = mlm_step(model, b, masked, &d, 1.0f);
  CHECK(value == Approx(loss()).epsilon(1e-6));
  test::GradTolerance tol;
  tol.nmax = 12;
  tol.abs = 2e-4;
  for (Param* p : params) {
    if (p->name.find("pooler") != std::string::npos || p->name.rfind("classifier", 0) == 0) {
      CHECK(p->grad.cwiseAbs().maxCoeff() == 0);  // the task head gets no MLM gradient
      continue;
    }
    test::check_gradient(p->name, p->value, p->grad, loss, tol);
  }
}

TEST_CASE("Pretraining interrupted and resumed equals an uninterrupted run", "[distill][mlm][resume]") {
  const fs::path dir = test::scratch_dir("pretrain_resume");
  const io::Vocab vocab = mlm_vocab();
  {
    std::ofstream out(dir / "text.txt");
    Rng rng(50);
    for (int i = 0; i < 64; ++i) {
      for (int w = 0; w < 6 + static_cast<int>(rng.below(8)); ++w) out << "w" << rng.below(30) << " ";
      out << "\n";
    }
  }
  io::WordPieceTokenizer tok(vocab, true);
  std::vector<io::Example> examples;
  for (auto& t : io::read_texts(dir / "text.txt")) examples.push_back({t, "", false, -1, {}, {}, {}});
  TrainData data;
  data.train = io::encode_examples(tok, examples, 24);
  data.dev = std::vector<io::EncodedExample>(data.train.begin(), data.train.begin() + 16);
  const MaskVocab mv = MaskVocab::from_vocab(vocab);
  const MaskingOptions mo;
  TrainOptions o;
  o.train = o.dev = (dir / "text.txt").string();
  o.batch_size = 8;
  o.lr = 1e-3;
  o.max_steps = 14;
  o.save_every = 4;
  o.eval_every = 5;
  o.log_every = 2;
  o.out = (dir / "straight").string();
  DevEval dev{[&](const BertModel& m) -> std::map<std::string, double> {
                return {{"mlm_loss", mlm_eval_loss(m, data.dev, mv, mo, 9, 8)}};
              },
              "mlm_loss", true};
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  auto fresh = [] {
    auto m = std::make_unique<BertModel>(mlm_config());
    Rng rng(51);
    m->init_weights(rng);
    m->add_mlm_head(rng);
    return m;
  };
  auto straight = fresh();
  const TrainResult r = train(*straight, &vocab, true, data, o, masked_lm_loss(mv, mo), {}, dev);
  CHECK(r.best_step > 0);
  TrainOptions oi = o;
  oi.out = (dir / "interrupted").string();
  int calls = 0;
  LossFn base = masked_lm_loss(mv, mo);
  LossFn crashing = [&](BertModel& m, const Batch& b, Rng& rng, float s) {
    if (++calls == 10) throw std::runtime_error("simulated kill");
    return base(m, b, rng, s);
  };
  auto first = fresh();
  REQUIRE_THROWS_WITH(train(*first, &vocab, true, data, oi, crashing, {}, dev), "simulated kill");
  REQUIRE(latest_checkpoint(oi.out)->filename() == "step-00000008");
  auto second = fresh();
  oi.resume = oi.out;
  train(*second, &vocab, true, data, oi, base, {}, dev);
  omp_set_num_threads(saved_threads);
  ParamList a = straight->params(), b = second->params();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i]->name);
    REQUIRE(a[i]->value == b[i]->value);
  }
  // The MLM loss and the dev MLM loss are in metrics.jsonl.
  std::ifstream in(fs::path(o.out) / "metrics.jsonl");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(all.find("\"loss_mlm\"") != std::string::npos);
  CHECK(all.find("\"dev_mlm_loss\"") != std::string::npos);
}

TEST_CASE("Fine-tuning a pretrained model drops the MLM head and adds a seeded task head", "[distill][mlm]") {
  BertModel a(mlm_config()), b(mlm_config());
  Rng ra(60), rb(60);
  a.init_weights(ra);
  b.init_weights(rb);
  a.add_mlm_head(ra);
  b.add_mlm_head(rb);
  const std::string note = to_task_model(a, {"x", "y", "z", "w"}, 7);
  to_task_model(b, {"x", "y", "z", "w"}, 7);
  CHECK(note.find("dropped its MLM head") != std::string::npos);
  CHECK(!a.mlm);
  CHECK(a.config.labels.size() == 4);
  CHECK(a.classifier.weight.value.rows() == 4);
  CHECK(a.classifier.weight.value == b.classifier.weight.value);  // seeded
  CHECK(a.classifier.weight.value.cwiseAbs().maxCoeff() > 0);
  for (Param* p : a.params()) CHECK(p->name.rfind("cls.", 0) != 0);
  CHECK(to_task_model(a, {"x"}, 7).empty());  // no MLM head: nothing to do
  // Another task: a token head (no pooler), its name in the note.
  BertModel t(mlm_config());
  Rng rt(61);
  t.init_weights(rt);
  t.add_mlm_head(rt);
  const std::string token_note = to_task_model(t, {"B-X", "I-X", "O"}, 7, Task::token_classification);
  CHECK(token_note.find("token_classification head for 3 labels") != std::string::npos);
  CHECK(t.config.per_token_head());
  for (Param* p : t.params()) CHECK(p->name.find("pooler") == std::string::npos);
}
