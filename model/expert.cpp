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
  ffn_block_forward(intermediate, output, norm, act, x, mask ? *mask : Mat(), y, cache);
}

void ExpertFFN::backward(MatRef dy, const Cache& cache, Mat& dx) {
  ffn_block_backward(intermediate, output, norm, act, dy, cache, dx, nullptr);
}

void ExpertFFN::collect(ParamList& params) {
  intermediate.collect(params);
  output.collect(params);
  norm.collect(params);
}

}  // namespace moekit
