// Fully connected layer with Hugging Face weight orientation: y = x * W^T + b, W is [out, in].
#pragma once
#include <string>

#include "model/param.h"

namespace moekit {

struct Linear {
  Param weight;  // [out, in]
  Param bias;    // [1, out]

  struct Cache {
    Mat x;  // [n_tok, in]
  };

  void init(const std::string& name, Eigen::Index in, Eigen::Index out);
  Eigen::Index in() const { return weight.value.cols(); }
  Eigen::Index out() const { return weight.value.rows(); }

  // x: [n_tok, in] -> y: [n_tok, out]. cache == nullptr at inference.
  void forward(MatRef x, Mat& y, Cache* cache) const;
  // dy: [n_tok, out]. Writes dx (if not null), accumulates weight/bias grads.
  void backward(MatRef dy, const Cache& cache, Mat* dx);
  void collect(ParamList& params);
};

}  // namespace moekit
