#include "model/bert.h"

#include <cmath>

#include "model/dropout.h"

namespace moekit {

BertModel::BertModel(const BertConfig& c) : config(c) {
  c.validate();
  embeddings.init(c);
  layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (size_t i = 0; i < layers.size(); ++i)
    layers[i].init(c.prefix() + "encoder.layer." + std::to_string(i) + ".", c);
  if (c.model_type == "roberta") {
    pooler.init("classifier.dense", c.hidden_size, c.hidden_size);
    classifier.init("classifier.out_proj", c.hidden_size, c.num_labels());
  } else {
    pooler.init(c.prefix() + "pooler.dense", c.hidden_size, c.hidden_size);
    classifier.init("classifier", c.hidden_size, c.num_labels());
  }
}

ParamList BertModel::params() {
  ParamList list;
  embeddings.collect(list);
  for (auto& layer : layers) layer.collect(list);
  pooler.collect(list);
  classifier.collect(list);
  return list;
}

void BertModel::init_weights(Rng& rng) {
  for (Param* p : params()) {
    if (p->name.find("LayerNorm.weight") != std::string::npos) {
      p->value.setOnes();
    } else if (p->vector) {  // biases (LayerNorm weights handled above)
      p->value.setZero();
    } else {
      for (Eigen::Index i = 0; i < p->value.size(); ++i)
        p->value.data()[i] = static_cast<float>(rng.normal() * config.initializer_range);
    }
  }
  embeddings.word.value.row(config.pad_token_id).setZero();
}

void BertModel::init_head(Rng& rng) {
  for (Eigen::Index i = 0; i < classifier.weight.value.size(); ++i)
    classifier.weight.value.data()[i] = static_cast<float>(rng.normal() * config.initializer_range);
  classifier.bias.value.setZero();
}

Outputs BertModel::forward(const Batch& batch, ForwardCache* cache, Rng* dropout_rng, bool keep_hidden) const {
  Outputs out;
  Mat h;
  embeddings.forward(batch, h, cache ? &cache->embeddings : nullptr, dropout_rng);
  if (keep_hidden) out.hidden_states.push_back(h);
  if (cache) cache->layers.resize(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    Mat next;
    layers[i].forward(h, batch, next, cache ? &cache->layers[i] : nullptr, dropout_rng);
    h = std::move(next);
    if (keep_hidden) out.hidden_states.push_back(h);
  }
  const Eigen::Index hidden = h.cols();
  Mat cls(batch.batch, hidden);
  for (int64_t b = 0; b < batch.batch; ++b) cls.row(b) = h.row(b * batch.seq);
  const bool train = dropout_rng && config.hidden_dropout_prob > 0;
  Mat cls_mask, pooled_mask;
  if (train && config.model_type == "roberta") {
    cls_mask = dropout_mask(*dropout_rng, cls.rows(), cls.cols(), config.hidden_dropout_prob);
    cls.array() *= cls_mask.array();
  }
  Mat pooled;
  pooler.forward(cls, pooled, cache ? &cache->pooler : nullptr);
  pooled = pooled.array().tanh().matrix();
  Mat pooled_in = pooled;
  if (train) {
    pooled_mask = dropout_mask(*dropout_rng, pooled.rows(), pooled.cols(), config.hidden_dropout_prob);
    pooled_in.array() *= pooled_mask.array();
  }
  classifier.forward(pooled_in, out.logits, cache ? &cache->classifier : nullptr);
  if (cache) {
    cache->cls_mask = std::move(cls_mask);
    cache->pooled = std::move(pooled);
    cache->pooled_mask = std::move(pooled_mask);
  }
  return out;
}

void BertModel::backward(const Batch& batch, MatRef dlogits, const ForwardCache& cache,
                         const std::vector<Mat>* dhidden, std::vector<DenseFFN::Taps>* ffn_taps) {
  Mat dpooled;
  classifier.backward(dlogits, cache.classifier, &dpooled);
  if (cache.pooled_mask.size() > 0) dpooled.array() *= cache.pooled_mask.array();
  // tanh' = 1 - tanh^2
  Mat dpre = dpooled.cwiseProduct((1.0f - cache.pooled.array().square()).matrix());
  Mat dcls;
  pooler.backward(dpre, cache.pooler, &dcls);
  if (cache.cls_mask.size() > 0) dcls.array() *= cache.cls_mask.array();

  const Eigen::Index hidden = dcls.cols();
  Mat dh = Mat::Zero(batch.n_tok(), hidden);
  for (int64_t b = 0; b < batch.batch; ++b) dh.row(b * batch.seq) = dcls.row(b);
  auto add_hidden = [&](size_t idx) {
    if (dhidden && idx < dhidden->size() && (*dhidden)[idx].size() > 0) dh += (*dhidden)[idx];
  };
  if (ffn_taps) ffn_taps->resize(layers.size());
  for (size_t i = layers.size(); i-- > 0;) {
    add_hidden(i + 1);
    Mat dx;
    layers[i].backward(dh, batch, cache.layers[i], dx, ffn_taps ? &(*ffn_taps)[i] : nullptr);
    dh = std::move(dx);
  }
  add_hidden(0);
  embeddings.backward(batch, dh, cache.embeddings);
}

}  // namespace moekit
