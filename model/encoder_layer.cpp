#include "model/encoder_layer.h"

namespace moekit {

void EncoderLayer::init(const std::string& p, const BertConfig& c, int64_t index) {
  attention.init(p + "attention.", c);
  if (c.moe && c.moe->is_moe_layer(index)) {
    MoeFFN m;
    m.init(p, c, static_cast<uint64_t>(index));  // hash table seeded by the layer index
    set_moe(std::move(m));
  } else {
    ffn.init(p, c);
    moe.reset();
  }
}

void EncoderLayer::set_moe(MoeFFN moe_ffn) {
  moe = std::move(moe_ffn);
  ffn = DenseFFN{};
}

void EncoderLayer::forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng,
                           MoeStats* stats) const {
  Mat a;
  attention.forward(x, batch, a, cache ? &cache->attention : nullptr, dropout_rng);
  if (moe)
    moe->forward(a, batch, y, cache ? &cache->moe : nullptr, dropout_rng, stats);
  else
    ffn.forward(a, y, cache ? &cache->ffn : nullptr, dropout_rng);
}

void EncoderLayer::backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, DenseFFN::Taps* taps,
                            float balance_weight) {
  Mat da;
  if (moe)
    moe->backward(dy, batch, cache.moe, da, balance_weight);
  else
    ffn.backward(dy, cache.ffn, da, taps);
  attention.backward(da, batch, cache.attention, dx);
}

void EncoderLayer::collect(ParamList& params) {
  attention.collect(params);
  if (moe)
    moe->collect(params);
  else
    ffn.collect(params);
}

}  // namespace moekit
