// MoEBERT importance: the one-pass formula against per-example backward passes and against
// finite differences of the loss along each neuron's weights (the Taylor term it estimates).
#include <catch2/catch.hpp>
#include <cmath>

#include "compress/importance.h"
#include "model/loss.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

std::vector<io::EncodedExample> examples_of(const Batch& b) {
  std::vector<io::EncodedExample> out;
  for (int64_t s = 0; s < b.batch; ++s) {
    io::EncodedExample e;
    for (int64_t t = 0; t < b.seq; ++t) {
      const size_t i = static_cast<size_t>(s * b.seq + t);
      if (!b.mask[i]) break;
      e.ids.push_back(b.ids[i]);
      e.type_ids.push_back(b.type_ids[i]);
    }
    e.label = b.labels[static_cast<size_t>(s)];
    out.push_back(e);
  }
  return out;
}

double example_loss(const BertModel& model, const io::EncodedExample& e) {
  Batch one = io::make_batch({e}, {0}, 0);
  return softmax_cross_entropy(model.forward(one, nullptr, nullptr).logits, one.labels, nullptr);
}

}  // namespace

TEST_CASE("One-pass importance equals per-example weight-gradient importance", "[compress][importance]") {
  BertConfig c = tiny_config();
  BertModel model(c);
  randomize(model, 41, 0.3);
  const auto examples = examples_of(tiny_batch(c, {9, 4, 7, 5, 8}, 42));
  const compress::Importance fast = compress::score_importance(model, examples, 3);
  REQUIRE(fast.examples == 5);

  // Brute force: one backward per example, MoEBERT's formula on the weight gradients.
  std::vector<std::vector<double>> slow(model.layers.size(), std::vector<double>(static_cast<size_t>(c.intermediate_size), 0));
  for (const auto& e : examples) {
    Batch one = io::make_batch({e}, {0}, 0);
    ForwardCache cache;
    Outputs out = model.forward(one, &cache, nullptr);
    Mat dlogits;
    softmax_cross_entropy(out.logits, one.labels, &dlogits);
    zero_grads(model.params());
    model.backward(one, dlogits, cache);
    for (size_t l = 0; l < model.layers.size(); ++l) {
      const auto& w1 = model.layers[l].ffn.intermediate.weight;
      const auto& w2 = model.layers[l].ffn.output.weight;
      for (Eigen::Index j = 0; j < c.intermediate_size; ++j) {
        const double term = w1.value.row(j).cast<double>().dot(w1.grad.row(j).cast<double>()) +
                            w2.value.col(j).cast<double>().dot(w2.grad.col(j).cast<double>());
        slow[l][static_cast<size_t>(j)] += std::abs(term);
      }
    }
  }
  for (size_t l = 0; l < slow.size(); ++l)
    for (size_t j = 0; j < slow[l].size(); ++j) {
      INFO("layer " << l << " neuron " << j);
      CHECK(fast.layers[l][j] == Approx(slow[l][j]).epsilon(1e-4).margin(1e-7));
    }
}

TEST_CASE("Each example's importance term is the loss derivative along the neuron's weights", "[compress][importance]") {
  BertConfig c = tiny_config();
  BertModel model(c);
  randomize(model, 43, 0.3);
  const auto examples = examples_of(tiny_batch(c, {8}, 44));
  const compress::Importance imp = compress::score_importance(model, examples, 1);
  // Scaling neuron j's weights (row j of W1, column j of W2) by (1 + eps) changes L by
  // eps * term + O(eps^2); with one example, I_j = |term|.
  const float eps = 1e-3f;
  for (size_t l = 0; l < model.layers.size(); ++l) {
    auto& ffn = model.layers[l].ffn;
    for (Eigen::Index j = 0; j < c.intermediate_size; j += 3) {
      const RowVec w1 = ffn.intermediate.weight.value.row(j);
      const Eigen::VectorXf w2 = ffn.output.weight.value.col(j);
      auto scaled_loss = [&](float s) {
        ffn.intermediate.weight.value.row(j) = w1 * s;
        ffn.output.weight.value.col(j) = w2 * s;
        const double loss = example_loss(model, examples[0]);
        ffn.intermediate.weight.value.row(j) = w1;
        ffn.output.weight.value.col(j) = w2;
        return loss;
      };
      const double numeric = (scaled_loss(1 + eps) - scaled_loss(1 - eps)) / (2 * eps);
      INFO("layer " << l << " neuron " << j);
      CHECK(imp.layers[l][static_cast<size_t>(j)] == Approx(std::abs(numeric)).epsilon(2e-2).margin(2e-4));
    }
  }
}

TEST_CASE("Importance ranks a planted important neuron first", "[compress][importance]") {
  BertConfig c = tiny_config();
  BertModel model(c);
  randomize(model, 45, 0.1);
  // Neuron 5 of layer 1 is the only one with a real path to the output: the others' output
  // weights are shrunk 100-fold, so the loss hardly depends on them.
  model.layers[1].ffn.output.weight.value *= 0.01f;
  model.layers[1].ffn.output.weight.value.col(5) *= 300.0f;
  const auto examples = examples_of(tiny_batch(c, {9, 6, 7, 8, 5, 9}, 46));
  const compress::Importance imp = compress::score_importance(model, examples, 4);
  const auto& s = imp.layers[1];
  CHECK(std::max_element(s.begin(), s.end()) - s.begin() == 5);
}

TEST_CASE("Importance shards (data-parallel ranks) sum to the whole data's scores", "[compress][importance]") {
  BertConfig c = tiny_config();
  BertModel model(c);
  randomize(model, 43, 0.3);
  const auto examples = examples_of(tiny_batch(c, {9, 4, 7, 5, 8, 3, 6}, 44));
  const compress::Importance whole = compress::score_importance(model, examples, 2);
  const compress::Importance a = compress::score_importance(model, examples, 2, 0, false, 0, 3);
  const compress::Importance b = compress::score_importance(model, examples, 2, 0, false, 1, 3);
  const compress::Importance d = compress::score_importance(model, examples, 2, 0, false, 2, 3);
  CHECK(a.examples + b.examples + d.examples == whole.examples);
  CHECK(a.examples > 0);
  CHECK(d.examples > 0);  // 4 batches over 3 shards: every shard scores something
  for (size_t l = 0; l < whole.layers.size(); ++l)
    for (size_t j = 0; j < whole.layers[l].size(); ++j) {
      CHECK(whole.layers[l][j] > 0);
      CHECK(a.layers[l][j] + b.layers[l][j] + d.layers[l][j] == Approx(whole.layers[l][j]).epsilon(1e-12));
    }
}
