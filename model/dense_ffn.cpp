#include "model/dense_ffn.h"

#include "model/activation.h"
#include "model/dropout.h"

namespace moekit {

void DenseFFN::init(const std::string& p, const BertConfig& c) {
  const LayerNames& n = c.layer_names();
  intermediate.init(p + n.ffn_in, c.hidden_size, c.intermediate_size);
  output.init(p + n.ffn_out, c.intermediate_size, c.hidden_size);
  norm.init(p + n.ffn_norm, c.hidden_size, c.layer_norm_eps);
  act = c.hidden_act;
  hidden_dropout = c.hidden_dropout_prob;
}

namespace {

Epilogue epilogue_of(Activation act) {
  switch (act) {
    case Activation::gelu: return Epilogue::gelu_erf;
    case Activation::gelu_new: return Epilogue::gelu_tanh;
    case Activation::relu: return Epilogue::relu;
  }
  return Epilogue::none;
}

}  // namespace

void ffn_core_forward(const Linear& w1, const Linear& w2, Activation act, MatRef x, Mat& o, FfnCache* cache) {
  if (!cache && w1.packed && w2.packed && w1.packed->bf16_activations() && w2.packed->bf16_activations()) {
    // bf16 inference on bf16 kernels: the activation runs in the up-projection's epilogue and the
    // hidden layer stays bf16, the rounding the down-projection would apply to its input anyway.
    thread_local Bf16Matrix a;  // per thread: MoE experts run from several threads at once
    w1.packed->multiply(x, a, epilogue_of(act));
    w2.packed->multiply(a, o);
    return;
  }
  if (!cache && w1.int8_weight && w2.int8_weight) {
    // int8 inference: the hidden layer goes from one int8 product to the next as codes.
    const QuantizedActivations h = int8_linear_activated(quantize_activations(x), *w1.int8_weight, w1.bias.value, act);
    int8_linear(h, *w2.int8_weight, w2.bias.value, o);
    return;
  }
  if (!cache && w1.packed && w2.packed) {
    // Float inference: the activation runs in the up-projection's epilogue, so the pre-activation
    // never reaches memory and no separate pass (and thread team) applies it.
    Mat a;
    w1.packed->multiply(x, a, epilogue_of(act));
    w2.packed->multiply(a, o);
    return;
  }
  Mat z, a;
  w1.forward(x, z, cache ? &cache->in : nullptr);
  activation_forward(act, z, a);
  w2.forward(a, o, cache ? &cache->mid : nullptr);
  if (cache) cache->z = std::move(z);
}

// o = W2 a + b2, a = act(z), z = W1 x + b1:  da = dout W2;  dz = da * act'(z);  dx = dz W1.
void ffn_core_backward(Linear& w1, Linear& w2, Activation act, MatRef dout, const FfnCache& cache, Mat& dx,
                       FfnTaps* taps) {
  Mat da, dz;
  w2.backward(dout, cache.mid, &da);
  activation_backward(act, cache.z, da, dz);
  w1.backward(dz, cache.in, &dx);
  if (taps) {
    taps->dz = std::move(dz);
    taps->da = std::move(da);
  }
}

void ffn_block_forward(const Linear& w1, const Linear& w2, const LayerNorm& norm, Activation act, MatRef x, Mat mask,
                       Mat& y, FfnCache* cache, const Mat* addend) {
  Mat o;
  ffn_core_forward(w1, w2, act, x, o, cache);
  if (addend) o += *addend;
  if (mask.size() > 0) o.array() *= mask.array();
  norm.forward_sum(o, x, y, cache ? &cache->norm : nullptr);
  if (cache) cache->hidden_mask = std::move(mask);
}

// r = x + M*(W2 a + b2), a = act(z), z = W1 x + b1:
//   dr = LN'(dy);  dx = core backward of (dr*M) + dr.
void ffn_block_backward(Linear& w1, Linear& w2, LayerNorm& norm, Activation act, MatRef dy, const FfnCache& cache,
                        Mat& dx, FfnTaps* taps, Mat* daddend) {
  Mat dr;
  norm.backward(dy, cache.norm, dr);
  Mat dout = cache.hidden_mask.size() > 0 ? Mat(dr.cwiseProduct(cache.hidden_mask)) : dr;
  ffn_core_backward(w1, w2, act, dout, cache, dx, taps);
  if (daddend) *daddend = std::move(dout);
  dx += dr;
}

void DenseFFN::forward(MatRef x, Mat& y, Cache* cache, Rng* dropout_rng) const {
  Mat mask;
  if (dropout_rng && hidden_dropout > 0) mask = dropout_mask(*dropout_rng, x.rows(), x.cols(), hidden_dropout);
  ffn_block_forward(intermediate, output, norm, act, x, std::move(mask), y, cache);
}

void DenseFFN::backward(MatRef dy, const Cache& cache, Mat& dx, Taps* taps) {
  ffn_block_backward(intermediate, output, norm, act, dy, cache, dx, taps);
}

void DenseFFN::collect(ParamList& params) {
  intermediate.collect(params);
  output.collect(params);
  norm.collect(params);
}

}  // namespace moekit
