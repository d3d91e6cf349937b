// BERT feed-forward sub-block (post-LN): y = LayerNorm(x + dropout(W2 act(W1 x + b1) + b2)).
// W1 = intermediate.dense [ffn, hidden], W2 = output.dense [hidden, ffn]: the thing MoE splits.
#pragma once
#include "model/config.h"
#include "model/layer_norm.h"
#include "model/linear.h"
#include "model/rng.h"

namespace moekit {

// The post-LN FFN sub-block maths, shared by DenseFFN and the MoE experts (model/expert.h):
//   y = LayerNorm(x + mask * (W2 act(W1 x + b1) + b2)).
struct FfnCache {
  Linear::Cache in;    // x
  Mat z;               // [n_tok, ffn] pre-activation W1 x + b1
  Linear::Cache mid;   // act(z)
  Mat hidden_mask;     // dropout mask (empty in eval)
  LayerNorm::Cache norm;
};
// Gradients at the neuron level, kept for importance scoring (DESIGN.md 4.1).
struct FfnTaps {
  Mat dz;  // dL/dz  [n_tok, ffn]
  Mat da;  // dL/d act(z)  [n_tok, ffn]
};
// The FFN part alone, o = W2 act(W1 x + b1) + b2 (the experts of a "layer"-norm MoE); fills
// cache->in, z and mid.
void ffn_core_forward(const Linear& w1, const Linear& w2, Activation act, MatRef x, Mat& o, FfnCache* cache);
// Writes dx of the part alone (no residual), accumulates grads, fills taps when given.
void ffn_core_backward(Linear& w1, Linear& w2, Activation act, MatRef dout, const FfnCache& cache, Mat& dx,
                       FfnTaps* taps);
// mask: dropout mask of the FFN output (empty = none). addend: added to the FFN output before
// dropout (a tied shared FFN's part, model/moe_ffn.h).
void ffn_block_forward(const Linear& w1, const Linear& w2, const LayerNorm& norm, Activation act, MatRef x, Mat mask,
                       Mat& y, FfnCache* cache, const Mat* addend = nullptr);
// Writes dx (residual included), accumulates parameter grads, fills taps when given; daddend: the
// gradient of the addend.
void ffn_block_backward(Linear& w1, Linear& w2, LayerNorm& norm, Activation act, MatRef dy, const FfnCache& cache,
                        Mat& dx, FfnTaps* taps, Mat* daddend = nullptr);

struct DenseFFN {
  Linear intermediate;  // W1, b1
  Linear output;        // W2, b2
  LayerNorm norm;       // output.LayerNorm
  Activation act = Activation::gelu;
  float hidden_dropout = 0.1f;

  using Cache = FfnCache;
  using Taps = FfnTaps;

  void init(const std::string& prefix, const BertConfig& config);  // prefix "...layer.N."
  void forward(MatRef x, Mat& y, Cache* cache, Rng* dropout_rng) const;
  // Writes dx (residual included); fills taps when given.
  void backward(MatRef dy, const Cache& cache, Mat& dx, Taps* taps = nullptr);
  void collect(ParamList& params);
};

}  // namespace moekit
