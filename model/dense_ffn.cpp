#include "model/dense_ffn.h"

#include "model/activation.h"
#include "model/dropout.h"

namespace moekit {

void DenseFFN::init(const std::string& p, const BertConfig& c) {
  intermediate.init(p + "intermediate.dense", c.hidden_size, c.intermediate_size);
  output.init(p + "output.dense", c.intermediate_size, c.hidden_size);
  norm.init(p + "output.LayerNorm", c.hidden_size, c.layer_norm_eps);
  act = c.hidden_act;
  hidden_dropout = c.hidden_dropout_prob;
}

void DenseFFN::forward(MatRef x, Mat& y, Cache* cache, Rng* dropout_rng) const {
  Mat z, a, o;
  intermediate.forward(x, z, cache ? &cache->in : nullptr);
  activation_forward(act, z, a);
  output.forward(a, o, cache ? &cache->mid : nullptr);
  Mat hmask;
  if (dropout_rng && hidden_dropout > 0) {
    hmask = dropout_mask(*dropout_rng, o.rows(), o.cols(), hidden_dropout);
    o.array() *= hmask.array();
  }
  o += x;
  norm.forward(o, y, cache ? &cache->norm : nullptr);
  if (cache) {
    cache->z = std::move(z);
    cache->hidden_mask = std::move(hmask);
  }
}

// r = x + M*(W2 a + b2), a = act(z), z = W1 x + b1:
//   dr = LN'(dy);  da = (dr*M) W2;  dz = da * act'(z);  dx = dz W1 + dr.
void DenseFFN::backward(MatRef dy, const Cache& cache, Mat& dx, Taps* taps) {
  Mat dr;
  norm.backward(dy, cache.norm, dr);
  Mat dout = cache.hidden_mask.size() > 0 ? Mat(dr.cwiseProduct(cache.hidden_mask)) : dr;
  Mat da, dz;
  output.backward(dout, cache.mid, &da);
  activation_backward(act, cache.z, da, dz);
  intermediate.backward(dz, cache.in, &dx);
  dx += dr;
  if (taps) {
    taps->dz = std::move(dz);
    taps->da = std::move(da);
  }
}

void DenseFFN::collect(ParamList& params) {
  intermediate.collect(params);
  output.collect(params);
  norm.collect(params);
}

}  // namespace moekit
