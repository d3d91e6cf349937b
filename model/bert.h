// BertForSequenceClassification (and RoBERTa's equivalent), exactly as Hugging Face computes it:
// embeddings -> post-LN blocks -> pooler tanh(dense(CLS)) -> classifier.
// RoBERTa's head (classifier.dense -> tanh -> classifier.out_proj) is the same maths under
// other names, plus a dropout before the dense layer in training.
#pragma once
#include <vector>

#include "model/batch.h"
#include "model/config.h"
#include "model/embeddings.h"
#include "model/encoder_layer.h"

namespace moekit {

struct ForwardCache {
  Embeddings::Cache embeddings;
  std::vector<EncoderLayer::Cache> layers;
  Mat cls;                // [batch, hidden] CLS rows of the last layer
  Mat cls_mask;           // RoBERTa dropout before the pooler dense (empty otherwise)
  Linear::Cache pooler;
  Mat pooled;             // tanh output [batch, hidden]
  Mat pooled_mask;        // dropout mask before the classifier (empty in eval)
  Linear::Cache classifier;
};

struct Outputs {
  Mat logits;                      // [batch, num_labels]
  std::vector<Mat> hidden_states;  // [layers + 1] of [n_tok, hidden]: embeddings, each layer
};

struct BertModel {
  BertConfig config;
  Embeddings embeddings;
  std::vector<EncoderLayer> layers;
  Linear pooler;      // bert.pooler.dense | classifier.dense (RoBERTa)
  Linear classifier;  // classifier | classifier.out_proj (RoBERTa)

  explicit BertModel(const BertConfig& config);
  BertModel(const BertModel&) = delete;  // params() hands out pointers into the model
  BertModel& operator=(const BertModel&) = delete;

  // HF _init_weights: weights N(0, initializer_range), padding row of word embeddings zero,
  // LayerNorm 1/0, biases 0.
  void init_weights(Rng& rng);
  void init_head(Rng& rng);  // only pooler-independent classifier (a new head for a new task)

  // dropout_rng == nullptr: eval mode. cache == nullptr: inference (no activation memory).
  Outputs forward(const Batch& batch, ForwardCache* cache, Rng* dropout_rng, bool keep_hidden = false) const;

  // Accumulates every parameter's grad from dL/dlogits and, optionally, dL/dhidden_states
  // (same layout as Outputs::hidden_states; empty matrices are skipped). ffn_taps, when given,
  // receives each layer's FFN neuron gradients (size = layers).
  void backward(const Batch& batch, MatRef dlogits, const ForwardCache& cache,
                const std::vector<Mat>* dhidden = nullptr, std::vector<DenseFFN::Taps>* ffn_taps = nullptr);

  ParamList params();
};

}  // namespace moekit
