// The masked-LM head (model/mlm_head.h): its cross-entropy gradient, including the tied
// embedding table's share, against finite differences.
#include <catch2/catch.hpp>

#include "model/loss.h"
#include "model/mlm_head.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

TEST_CASE("MLM head cross-entropy gradient matches finite differences", "[model][grad][mlm]") {
  for (Activation act : {Activation::gelu, Activation::relu}) {
    INFO("activation " << activation_name(act));
    BertConfig c = tiny_config(act);
    MlmHead head;
    head.init(c);
    Rng rng(31);
    head.dense.weight.value = random_mat(rng, c.hidden_size, c.hidden_size, 0.3);
    head.dense.bias.value = random_mat(rng, 1, c.hidden_size, 0.1);
    head.norm.weight.value = (Mat::Ones(1, c.hidden_size) + random_mat(rng, 1, c.hidden_size, 0.1)).eval();
    head.norm.bias.value = random_mat(rng, 1, c.hidden_size, 0.1);
    head.bias.value = random_mat(rng, 1, c.vocab_size, 0.1);
    Param word;
    word.init("word", c.vocab_size, c.hidden_size, true);
    word.value = random_mat(rng, c.vocab_size, c.hidden_size, 0.3);
    Mat h = random_mat(rng, 6, c.hidden_size);
    const std::vector<int> targets{3, 7, 0, 39, 12, 7};
    auto loss = [&] {
      Mat logits;
      head.forward(h, word, logits, nullptr);
      return softmax_cross_entropy(logits, targets, nullptr);
    };
    MlmHead::Cache cache;
    Mat logits, dlogits, dh;
    head.forward(h, word, logits, &cache);
    REQUIRE(logits.rows() == 6);
    REQUIRE(logits.cols() == c.vocab_size);
    softmax_cross_entropy(logits, targets, &dlogits);
    ParamList params;
    head.collect(params);
    zero_grads(params);
    zero_grads({&word});
    head.backward(dlogits, cache, word, dh);
    GradTolerance tol;
    tol.abs = 2e-4;  // a mean over 6 rows: gradients are O(1e-2)
    // ReLU's kink: entries whose perturbation flips a pre-activation's sign are skipped.
    auto signs = [&] {
      Mat pre;
      head.dense.forward(h, pre, nullptr);
      std::vector<int32_t> s;
      for (Eigen::Index i = 0; i < pre.size(); ++i) s.push_back(pre.data()[i] > 0);
      return s;
    };
    auto skip = [&](Mat& x) { return skip_if_changes(x, tol.eps, signs); };
    check_gradient("h", h, dh, loss, tol, skip(h));
    check_gradient("word (tied decoder)", word.value, word.grad, loss, tol);
    for (Param* p : params) check_gradient(p->name, p->value, p->grad, loss, tol, skip(p->value));
    CHECK(params.size() == 5);
    CHECK(params.back()->name == "cls.predictions.bias");
  }
}
