// LayerNorm over the hidden dimension of each row: y = (x - mean) / sqrt(var + eps) * gamma + beta.
#pragma once
#include <string>

#include "model/param.h"

namespace moekit {

struct LayerNorm {
  Param weight;  // gamma [1, hidden]
  Param bias;    // beta  [1, hidden]
  float eps = 1e-12f;

  struct Cache {
    Mat xhat;     // [n_tok, hidden] normalised input
    RowVec rstd;  // [n_tok] 1 / sqrt(var + eps), as a row vector indexed by token
  };

  void init(const std::string& name, Eigen::Index hidden, float layer_norm_eps);
  void forward(MatRef x, Mat& y, Cache* cache) const;
  // y = LN(x + residual): a sublayer's residual sum, added in the same pass over the rows (the
  // cache is that of forward(x + residual)).
  void forward_sum(MatRef x, MatRef residual, Mat& y, Cache* cache) const;
  // Writes dx, accumulates gamma/beta grads.
  void backward(MatRef dy, const Cache& cache, Mat& dx);
  void collect(ParamList& params);

 private:
  void normalize(MatRef x, const MatRef* residual, Mat& y, Cache* cache) const;
};

// True for a LayerNorm gain by its Hugging Face name: BERT's "...LayerNorm.weight" and
// DistilBERT's "...sa_layer_norm.weight", "...output_layer_norm.weight" (HF init: ones).
bool is_layer_norm_weight(const std::string& name);

}  // namespace moekit
