#include "model/mlm_head.h"

#include "model/matmul.h"

#include "model/activation.h"

namespace moekit {

MlmNames mlm_names(const BertConfig& c) {
  if (c.distilbert())
    return {"vocab_transform", "vocab_layer_norm", "vocab_projector.bias", "", "vocab_projector.weight", "vocab_*"};
  return {"cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias",
          "cls.predictions.decoder.bias", "cls.predictions.decoder.weight", "cls.predictions.*"};
}

void MlmHead::init(const BertConfig& c) {
  const MlmNames n = mlm_names(c);
  dense.init(n.dense, c.hidden_size, c.hidden_size);
  norm.init(n.norm, c.hidden_size, static_cast<float>(c.layer_norm_eps));
  bias.init_vector(n.bias, c.vocab_size, false);
  act = c.hidden_act;
}

void MlmHead::init_weights(Rng& rng, double initializer_range) {
  for (Eigen::Index i = 0; i < dense.weight.value.size(); ++i)
    dense.weight.value.data()[i] = static_cast<float>(rng.normal() * initializer_range);
  dense.bias.value.setZero();
  norm.weight.value.setOnes();
  norm.bias.value.setZero();
  bias.value.setZero();
}

void MlmHead::forward(MatRef h, const Param& word, Mat& logits, Cache* cache) const {
  Mat pre, a, t;
  dense.forward(h, pre, cache ? &cache->dense : nullptr);
  activation_forward(act, pre, a);
  norm.forward(a, t, cache ? &cache->norm : nullptr);
  matmul_nt(t, word.value, logits, dense.precision);  // tied decoder: the word embeddings
  logits.rowwise() += bias.value.row(0);
  if (cache) {
    cache->pre = std::move(pre);
    cache->t = std::move(t);
  }
}

// logits = t E^T + b  =>  dE += dlogits^T t,  db += sum_rows(dlogits),  dt = dlogits E;
// then back through LayerNorm, the activation and the dense layer.
void MlmHead::backward(MatRef dlogits, const Cache& cache, Param& word, Mat& dh) {
  matmul_tn_acc(dlogits, cache.t, word.grad_buffer(), dense.precision);
  bias.grad_buffer() += dlogits.colwise().sum();
  Mat dt;
  matmul_nn(dlogits, word.value, dt, dense.precision);
  Mat da, dpre;
  norm.backward(dt, cache.norm, da);
  activation_backward(act, cache.pre, da, dpre);
  dense.backward(dpre, cache.dense, &dh);
}

void MlmHead::collect(ParamList& params) {
  dense.collect(params);
  norm.collect(params);
  params.push_back(&bias);
}

}  // namespace moekit
