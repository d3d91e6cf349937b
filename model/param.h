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
  // Allocated on first use (zero_grads or a backward), so a model that only runs inference never
  // holds gradient memory (half the float footprint); backward accumulates into it.
  Mat grad;
  bool decay = true;  // AdamW weight decay applies (false for biases and LayerNorm)
  bool vector = false;  // stored as a 1-D tensor [n] (biases, LayerNorm); value is [1, n]

  void init(std::string param_name, Eigen::Index rows, Eigen::Index cols, bool with_decay) {
    name = std::move(param_name);
    value = Mat::Zero(rows, cols);
    grad = Mat();
    decay = with_decay;
    vector = false;
  }
  // The gradient buffer, zero-allocated if absent (or of another shape, after value changed).
  Mat& grad_buffer() {
    if (grad.rows() != value.rows() || grad.cols() != value.cols()) grad = Mat::Zero(value.rows(), value.cols());
    return grad;
  }
  void init_vector(std::string param_name, Eigen::Index n, bool with_decay) {
    init(std::move(param_name), 1, n, with_decay);
    vector = true;
  }
};

using ParamList = std::vector<Param*>;

void zero_grads(const ParamList& params);
size_t count_values(const ParamList& params);

}  // namespace moekit
