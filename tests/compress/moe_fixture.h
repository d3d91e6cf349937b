// A random MoE model for export and int8 tests: hidden 32, FFN 64, the layers `moe_layers`
// ("" = all) split into 4 random hash-routed experts of 16 neurons. A random classifier gives
// near-ties that any rounding flips; a trained one has margins, so the head is scaled by 20 to
// give this model margins of that kind. distilbert: the same as a DistilBERT.
#pragma once
#include <memory>
#include <string>

#include "compress/moefy.h"
#include "model/rng.h"
#include "tests/support/tiny_model.h"

namespace moekit::test {

inline std::unique_ptr<BertModel> random_moe_model(const std::string& moe_layers = "", bool distilbert = false) {
  BertConfig c = distilbert ? tiny_distilbert_config() : tiny_config();
  c.hidden_size = 32;
  c.intermediate_size = 64;
  auto m = std::make_unique<BertModel>(c);
  randomize(*m, 61, 0.2);
  compress::MoefyOptions o;
  o.method = "random";
  o.experts = 4;
  o.expert_size = 16;
  o.shared = 0;
  o.layers = moe_layers;
  compress::moefy(*m, o, nullptr, nullptr);
  m->classifier.weight.value *= 20.0f;
  return m;
}

// Seeded pseudo-importance scores of every layer's FFN neurons (uniform in [0, 1)).
inline compress::Importance fake_importance(const BertConfig& c, uint64_t seed) {
  compress::Importance imp;
  Rng rng(seed);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::vector<double> s(static_cast<size_t>(c.intermediate_size));
    for (double& v : s) v = rng.uniform();
    imp.layers.push_back(std::move(s));
  }
  return imp;
}

// Rows of a and b whose largest logit is in the same column.
inline int agreeing_labels(const Mat& a, const Mat& b) {
  int agree = 0;
  for (Eigen::Index r = 0; r < a.rows(); ++r) {
    Eigen::Index ia, ib;
    a.row(r).maxCoeff(&ia);
    b.row(r).maxCoeff(&ib);
    agree += ia == ib;
  }
  return agree;
}

}  // namespace moekit::test
