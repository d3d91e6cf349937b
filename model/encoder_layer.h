// One post-LN transformer block: attention sub-block then FFN sub-block.
#pragma once
#include "model/attention.h"
#include "model/dense_ffn.h"

namespace moekit {

struct EncoderLayer {
  Attention attention;
  DenseFFN ffn;

  struct Cache {
    Attention::Cache attention;
    DenseFFN::Cache ffn;
  };

  void init(const std::string& prefix, const BertConfig& config);  // prefix "bert.encoder.layer.N."
  void forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng) const;
  void backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, DenseFFN::Taps* taps);
  void collect(ParamList& params);
};

}  // namespace moekit
