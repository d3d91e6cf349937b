// BERT self-attention sub-block (post-LN): y = LayerNorm(x + dropout(dense(MHA(x)))).
// MHA: per (sequence, head), P = softmax(Q K^T / sqrt(head_dim) + padding mask), ctx = dropout(P) V.
// Go-Wider sharing: a block whose `shared` is set runs that block's projections (query, key,
// value, out) with its own LayerNorm; its backward accumulates into the shared block's grads.
#pragma once
#include "model/batch.h"
#include "model/config.h"
#include "model/layer_norm.h"
#include "model/linear.h"
#include "model/rng.h"

namespace moekit {

struct Attention {
  Linear query, key, value;  // [hidden, hidden] each
  Linear out;                // attention.output.dense (DistilBERT: attention.out_lin)
  LayerNorm norm;            // attention.output.LayerNorm (DistilBERT: sa_layer_norm)
  int64_t heads = 1;
  float attention_dropout = 0.1f;
  float hidden_dropout = 0.1f;
  // Set by BertModel::link_shared on the later layers of a sharing group; the own projections
  // then stay empty and are not collected. Pointer into the same model's layers, which never move.
  Attention* shared = nullptr;
  // Query, key and value stacked into one [3*hidden, hidden] weight (and bias), packed once for
  // inference (pack_qkv_for_inference) when all three are float: one product instead of three,
  // and a wider one that runs nearer the matmul's peak. Dropped by backward and by
  // BertModel::set_precision.
  std::shared_ptr<const PackedWeight> qkv_packed;
  // The same for int8 Q, K and V (an int8 export): their rows stacked, and the three biases.
  std::shared_ptr<const PackedInt8Matrix> qkv_int8;
  RowVec qkv_int8_bias;

  struct Cache {
    Linear::Cache in;          // x, shared by query/key/value
    Mat qh, kh, vh;            // [batch*heads*seq, head_dim]: head-major, block (b, h) at rows (b*heads + h)*seq
    Mat probs;                 // [batch*heads*seq, seq] softmax output, before dropout
    Mat probs_mask;            // same shape, dropout mask (empty in eval)
    Linear::Cache out;         // ctx
    Mat hidden_mask;           // [n_tok, hidden] dropout mask on dense output (empty in eval)
    LayerNorm::Cache norm;
  };

  // prefix "...layer.N." (names from config.layer_names()); with_projections false: only the
  // LayerNorm (a sharing layer).
  void init(const std::string& prefix, const BertConfig& config, bool with_projections = true);
  void forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng) const;
  // Writes dx (gradient w.r.t. the block input, residual path included). dscores, when given
  // ([batch*heads*seq, seq] like Cache::probs), is an extra gradient on the pre-softmax scores
  // (e.g. from an attention-distillation loss).
  void backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, const Mat* dscores = nullptr);
  void collect(ParamList& params);  // projections only when not shared, then the LayerNorm
  // Builds qkv_packed when Q, K and V are float (and this block owns them), and drops their own packs.
  void pack_qkv_for_inference();

 private:
  // True where the projections are packed bf16 weights on bf16 kernels (then bf16_inference runs).
  bool runs_bf16_inference() const;
  // o = the output projection of the attention context (before residual and LayerNorm).
  void bf16_inference(MatRef x, const Batch& batch, Mat& o) const;
};

}  // namespace moekit
