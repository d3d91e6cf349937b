#include "model/expert.h"

#include "model/activation.h"

namespace moekit {

void ExpertFFN::init(const std::string& p, int64_t hidden, int64_t expert_size, Activation activation, float eps) {
  intermediate.init(p + "intermediate.dense", hidden, expert_size);
  output.init(p + "output.dense", expert_size, hidden);
  norm.init(p + "output.LayerNorm", hidden, eps);
  neuron_index.assign(static_cast<size_t>(expert_size), -1);
  act = activation;
}

void ExpertFFN::ffn_part(MatRef x, Mat& y) const {
  Mat z, a;
  intermediate.forward(x, z, nullptr);
  activation_forward(act, z, a);
  y.noalias() = a * output.weight.value.transpose();
}

void ExpertFFN::forward(MatRef x, Mat& y, Cache* cache, const Mat* mask) const {
  Mat z, a, o;
  intermediate.forward(x, z, cache ? &cache->in : nullptr);
  activation_forward(act, z, a);
  output.forward(a, o, cache ? &cache->mid : nullptr);
  if (mask) o.array() *= mask->array();
  o += x;
  norm.forward(o, y, cache ? &cache->norm : nullptr);
  if (cache) {
    cache->z = std::move(z);
    cache->hidden_mask = mask ? *mask : Mat();
  }
}

// r = x + M*(W2 a + b2), a = act(z), z = W1 x + b1:
//   dr = LN'(dy);  da = (dr*M) W2;  dz = da * act'(z);  dx = dz W1 + dr.
void ExpertFFN::backward(MatRef dy, const Cache& cache, Mat& dx) {
  Mat dr;
  norm.backward(dy, cache.norm, dr);
  Mat dout = cache.hidden_mask.size() > 0 ? Mat(dr.cwiseProduct(cache.hidden_mask)) : dr;
  Mat da, dz;
  output.backward(dout, cache.mid, &da);
  activation_backward(act, cache.z, da, dz);
  intermediate.backward(dz, cache.in, &dx);
  dx += dr;
}

void ExpertFFN::collect(ParamList& params) {
  intermediate.collect(params);
  output.collect(params);
  norm.collect(params);
}

}  // namespace moekit
