#include "model/encoder_layer.h"

#include "model/dropout.h"

namespace moekit {

void EncoderLayer::init(const std::string& p, const BertConfig& c, int64_t index) {
  const bool is_moe_layer = c.moe && c.moe->is_moe_layer(index);
  const bool owner = !is_moe_layer || c.moe->share_owner(index) == index;
  attention.init(p, c, owner || !c.moe->share_attention);
  hidden_dropout = c.hidden_dropout_prob;
  moe.reset();
  moe_owner = true;
  if (!is_moe_layer) {
    ffn.init(p, c);
    return;
  }
  ffn = DenseFFN{};
  if (c.moe->norm == "layer") moe_norm.init(p + c.layer_names().ffn_norm, c.hidden_size, c.layer_norm_eps);
  if (owner) {
    moe = std::make_shared<MoeFFN>();
    moe->init(p, c, index);  // hash table seeded by the layer index
  } else {
    moe_owner = false;  // BertModel::link_shared sets `moe`
  }
}

void EncoderLayer::set_moe(MoeFFN moe_ffn) {
  if (!moe_ffn.expert_norm) moe_norm = std::move(ffn.norm);
  moe = std::make_shared<MoeFFN>(std::move(moe_ffn));
  moe_owner = true;
  ffn = DenseFFN{};
}

void EncoderLayer::share_moe(const std::shared_ptr<MoeFFN>& owner) {
  if (moe_norm.weight.value.size() == 0) moe_norm = std::move(ffn.norm);
  moe = owner;
  moe_owner = false;
  ffn = DenseFFN{};
}

void EncoderLayer::forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng,
                           MoeStats* stats) const {
  Mat a;
  attention.forward(x, batch, a, cache ? &cache->attention : nullptr, dropout_rng);
  if (!moe) {
    ffn.forward(a, y, cache ? &cache->ffn : nullptr, dropout_rng);
    return;
  }
  moe->forward(a, batch, y, cache ? &cache->moe : nullptr, dropout_rng, stats);
  if (moe->expert_norm) return;
  // y holds the mixture: y = LN(a + dropout(mixture)).
  Mat mask;
  if (dropout_rng && hidden_dropout > 0) {
    mask = dropout_mask(*dropout_rng, y.rows(), y.cols(), hidden_dropout);
    y.array() *= mask.array();
  }
  y += a;
  Mat normed;
  moe_norm.forward(y, normed, cache ? &cache->moe_norm : nullptr);
  y = std::move(normed);
  if (cache) cache->moe_mask = std::move(mask);
}

// Layer norm MoE: r = a + M * mixture(a), y = LN(r):  dr = LN'(dy);  da = dr + mixture'(dr * M).
void EncoderLayer::backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, DenseFFN::Taps* taps,
                            float balance_weight, const Mat* dscores) {
  Mat da;
  if (!moe) {
    ffn.backward(dy, cache.ffn, da, taps);
  } else if (moe->expert_norm) {
    moe->backward(dy, batch, cache.moe, da, balance_weight);
  } else {
    Mat dr;
    moe_norm.backward(dy, cache.moe_norm, dr);
    Mat dmix = cache.moe_mask.size() > 0 ? Mat(dr.cwiseProduct(cache.moe_mask)) : dr;
    moe->backward(dmix, batch, cache.moe, da, balance_weight);
    da += dr;
  }
  attention.backward(da, batch, cache.attention, dx, dscores);
}

void EncoderLayer::collect(ParamList& params) {
  attention.collect(params);
  if (!moe) {
    ffn.collect(params);
    return;
  }
  if (moe_owner) moe->collect(params);
  if (!moe->expert_norm) moe_norm.collect(params);
}

}  // namespace moekit
