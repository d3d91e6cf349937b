#include "model/encoder_layer.h"

namespace moekit {

void EncoderLayer::init(const std::string& p, const BertConfig& c) {
  attention.init(p + "attention.", c);
  ffn.init(p, c);
}

void EncoderLayer::forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng) const {
  Mat a;
  attention.forward(x, batch, a, cache ? &cache->attention : nullptr, dropout_rng);
  ffn.forward(a, y, cache ? &cache->ffn : nullptr, dropout_rng);
}

void EncoderLayer::backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx,
                            DenseFFN::Taps* taps) {
  Mat da;
  ffn.backward(dy, cache.ffn, da, taps);
  attention.backward(da, batch, cache.attention, dx);
}

void EncoderLayer::collect(ParamList& params) {
  attention.collect(params);
  ffn.collect(params);
}

}  // namespace moekit
