// A random MoE model for export and int8 tests: hidden 32, FFN 64, the layers `moe_layers`
// ("" = all) split into 4 random hash-routed experts of 16 neurons. A random classifier gives
// near-ties that any rounding flips; a trained one has margins, so the head is scaled by 20 to
// give this model margins of that kind.
#pragma once
#include <memory>
#include <string>

#include "compress/moefy.h"
#include "tests/support/tiny_model.h"

namespace moekit::test {

inline std::unique_ptr<BertModel> random_moe_model(const std::string& moe_layers = "") {
  BertConfig c = tiny_config();
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
