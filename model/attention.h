// BERT self-attention sub-block (post-LN): y = LayerNorm(x + dropout(dense(MHA(x)))).
// MHA: per (sequence, head), P = softmax(Q K^T / sqrt(head_dim) + padding mask), ctx = dropout(P) V.
#pragma once
#include "model/batch.h"
#include "model/config.h"
#include "model/layer_norm.h"
#include "model/linear.h"
#include "model/rng.h"

namespace moekit {

struct Attention {
  Linear query, key, value;  // [hidden, hidden] each
  Linear out;                // attention.output.dense
  LayerNorm norm;            // attention.output.LayerNorm
  int64_t heads = 1;
  float attention_dropout = 0.1f;
  float hidden_dropout = 0.1f;

  struct Cache {
    Linear::Cache in;          // x, shared by query/key/value
    Mat q, k, v;               // [n_tok, hidden]
    Mat probs;                 // [batch*heads*seq, seq] softmax output, before dropout
    Mat probs_mask;            // same shape, dropout mask (empty in eval)
    Linear::Cache out;         // ctx
    Mat hidden_mask;           // [n_tok, hidden] dropout mask on dense output (empty in eval)
    LayerNorm::Cache norm;
  };

  void init(const std::string& prefix, const BertConfig& config);  // prefix "...layer.N.attention."
  void forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng) const;
  // Writes dx (gradient w.r.t. the block input, residual path included).
  void backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx);
  void collect(ParamList& params);
};

}  // namespace moekit
