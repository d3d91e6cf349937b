// Named parameters: one list drives loading, saving, the optimizer, importance and grad checks.
// Names are Hugging Face names (e.g. "bert.encoder.layer.0.attention.self.query.weight").
#pragma once
#include <string>
#include <vector>

#include "model/tensor.h"

namespace moekit {

struct Param {
  std::string name;
  Mat value;
  Mat grad;     // same shape as value once init() ran; backward accumulates into it
  bool decay = true;  // AdamW weight decay applies (false for biases and LayerNorm)

  void init(std::string param_name, Eigen::Index rows, Eigen::Index cols, bool with_decay) {
    name = std::move(param_name);
    value = Mat::Zero(rows, cols);
    grad = Mat::Zero(rows, cols);
    decay = with_decay;
  }
};

using ParamList = std::vector<Param*>;

void zero_grads(const ParamList& params);
size_t count_values(const ParamList& params);

}  // namespace moekit
