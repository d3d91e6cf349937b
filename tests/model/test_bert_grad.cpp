// Whole-model gradient of the cross-entropy loss against finite differences, on a tiny BERT
// and a tiny RoBERTa, in eval mode and in train mode (dropout masks replayed from one seed).
#include <catch2/catch.hpp>

#include "model/bert.h"
#include "model/loss.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

TEST_CASE("Whole-model cross-entropy gradient matches finite differences", "[model][grad]") {
  for (const char* type : {"bert", "roberta"}) {
    for (bool train : {false, true}) {
      INFO(type << " train " << train);
      BertConfig c = tiny_config();
      c.model_type = type;
      if (c.model_type == "roberta") c.pad_token_id = 1;
      BertModel model(c);
      randomize(model, 21, 0.3);
      Batch b = tiny_batch(c, {7, 4, 5}, 13);
      const Rng drop(80);
      auto loss = [&] {
        Rng d = drop;
        Outputs out = model.forward(b, nullptr, train ? &d : nullptr);
        return softmax_cross_entropy(out.logits, b.labels, nullptr);
      };
      ForwardCache cache;
      Rng d = drop;
      Outputs out = model.forward(b, &cache, train ? &d : nullptr);
      Mat dlogits;
      softmax_cross_entropy(out.logits, b.labels, &dlogits);
      ParamList params = model.params();
      zero_grads(params);
      model.backward(b, dlogits, cache);
      GradTolerance tol;
      tol.nmax = 16;  // 16 sampled entries per tensor keeps this whole-model check fast
      tol.abs = 2e-4;  // the loss is a mean over 3 examples: gradients are O(1e-2)
      for (Param* p : params) check_gradient(p->name, p->value, p->grad, loss, tol);
    }
  }
}

TEST_CASE("Hidden-state gradients flow back to the embeddings", "[model][grad]") {
  BertConfig c = tiny_config();
  BertModel model(c);
  randomize(model, 22, 0.3);
  Batch b = tiny_batch(c, {5, 3}, 14);
  Rng rng(15);
  std::vector<Mat> r;
  for (int l = 0; l <= c.num_hidden_layers; ++l) r.push_back(random_mat(rng, b.n_tok(), c.hidden_size));
  Mat rl = random_mat(rng, b.batch, c.num_labels());
  auto loss = [&] {
    Outputs out = model.forward(b, nullptr, nullptr, true);
    double s = weighted_sum(rl, out.logits);
    for (size_t l = 0; l < r.size(); ++l) s += weighted_sum(r[l], out.hidden_states[l]);
    return s;
  };
  ForwardCache cache;
  model.forward(b, &cache, nullptr, true);
  ParamList params = model.params();
  zero_grads(params);
  model.backward(b, rl, cache, &r);
  GradTolerance tol;
  tol.nmax = 16;
  for (Param* p : params) check_gradient(p->name, p->value, p->grad, loss, tol);
}
