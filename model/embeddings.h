// BERT embeddings: LayerNorm(word[id] + position[pos] + token_type[type]), then dropout.
// DistilBERT has no token type table (type_vocab_size 0): LayerNorm(word[id] + position[pos]),
// and token type ids are ignored.
#pragma once
#include "model/batch.h"
#include "model/config.h"
#include "model/layer_norm.h"
#include "model/rng.h"

namespace moekit {

struct Embeddings {
  Param word;        // [vocab, hidden]
  Param position;    // [max_positions, hidden]
  Param token_type;  // [type_vocab, hidden]; empty (not a parameter) for DistilBERT
  LayerNorm norm;
  float dropout = 0.1f;
  int64_t pad_token_id = 0;
  bool roberta_positions = false;

  struct Cache {
    std::vector<int32_t> position_ids;
    LayerNorm::Cache norm;
    Mat dropout_mask;  // empty when no dropout was applied
  };

  void init(const BertConfig& config);
  bool has_token_types() const { return token_type.value.rows() > 0; }
  // Position id of every token: t (BERT) or RoBERTa's cumsum(mask)*mask + pad_token_id.
  std::vector<int32_t> position_ids(const Batch& batch) const;
  // out: [n_tok, hidden]. dropout_rng == nullptr means eval mode.
  void forward(const Batch& batch, Mat& out, Cache* cache, Rng* dropout_rng) const;
  // Accumulates table and LayerNorm grads from dout.
  void backward(const Batch& batch, MatRef dout, const Cache& cache);
  void collect(ParamList& params);
};

}  // namespace moekit
