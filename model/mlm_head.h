// BertForMaskedLM's prediction head, under Hugging Face's names:
//   t = LayerNorm(act(dense(h)))      cls.predictions.transform.{dense,LayerNorm}
//   logits = t * E^T + bias           E = bert.embeddings.word_embeddings (tied), cls.predictions.bias
// DistilBertForMaskedLM's is the same maths: vocab_transform, vocab_layer_norm, vocab_projector
// (its weight tied to the word embeddings, its bias the logits' bias).
// Run only on the masked positions' hidden rows: the [n, vocab] logits are the costly part.
#pragma once
#include "model/config.h"
#include "model/layer_norm.h"
#include "model/linear.h"
#include "model/rng.h"

namespace moekit {

// The head's tensor names for an architecture. decoder_weight is the tied decoder (a checkpoint
// may store a copy); bias_alias another name HF uses for the bias ("" when none); all names them
// all for messages ("cls.predictions.*").
struct MlmNames {
  std::string dense, norm, bias, bias_alias, decoder_weight, all;
};
MlmNames mlm_names(const BertConfig& config);

struct MlmHead {
  Linear dense;    // [hidden, hidden]
  LayerNorm norm;  // [hidden]
  Param bias;      // [1, vocab]
  Activation act = Activation::gelu;

  struct Cache {
    Linear::Cache dense;
    Mat pre;  // dense output, before the activation
    LayerNorm::Cache norm;
    Mat t;    // transformed rows [n, hidden]
  };

  void init(const BertConfig& config);
  // HF _init_weights: dense N(0, initializer_range), LayerNorm 1/0, biases 0.
  void init_weights(Rng& rng, double initializer_range);
  // h: [n, hidden] -> logits [n, vocab]; `word` is the tied embedding table [vocab, hidden].
  void forward(MatRef h, const Param& word, Mat& logits, Cache* cache) const;
  // Accumulates the head's grads and word.grad (the decoder's share of the tied table); writes dh.
  void backward(MatRef dlogits, const Cache& cache, Param& word, Mat& dh);
  void collect(ParamList& params);
};

}  // namespace moekit
