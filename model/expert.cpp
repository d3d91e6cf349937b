#include "model/expert.h"

#include "model/activation.h"
#include "model/matmul.h"

namespace moekit {

void ExpertFFN::init(const std::string& p, int64_t hidden, int64_t expert_size, Activation activation, float eps,
                     bool with_norm) {
  intermediate.init(p + "intermediate.dense", hidden, expert_size);
  output.init(p + "output.dense", expert_size, hidden);
  has_norm = with_norm;
  if (has_norm) norm.init(p + "output.LayerNorm", hidden, eps);
  neuron_index.assign(static_cast<size_t>(expert_size), -1);
  act = activation;
}

void ExpertFFN::ffn_part(MatRef x, Mat& y) const {
  Mat z, a;
  intermediate.forward(x, z, nullptr);
  activation_forward(act, z, a);
  matmul_nt(a, output.weight.value, y);
}

void ExpertFFN::rename(const std::string& p) {
  intermediate.weight.name = p + "intermediate.dense.weight";
  intermediate.bias.name = p + "intermediate.dense.bias";
  output.weight.name = p + "output.dense.weight";
  output.bias.name = p + "output.dense.bias";
  norm.weight.name = p + "output.LayerNorm.weight";
  norm.bias.name = p + "output.LayerNorm.bias";
}

void ExpertFFN::forward(MatRef x, Mat& y, Cache* cache, const Mat* mask, const Mat* addend) const {
  if (has_norm)
    ffn_block_forward(intermediate, output, norm, act, x, mask ? *mask : Mat(), y, cache, addend);
  else
    ffn_core_forward(intermediate, output, act, x, y, cache);
}

void ExpertFFN::backward(MatRef dy, const Cache& cache, Mat& dx, Mat* daddend) {
  if (has_norm)
    ffn_block_backward(intermediate, output, norm, act, dy, cache, dx, nullptr, daddend);
  else
    ffn_core_backward(intermediate, output, act, dy, cache, dx, nullptr);
}

void ExpertFFN::collect(ParamList& params) {
  intermediate.collect(params);
  output.collect(params);
  if (has_norm) norm.collect(params);
}

}  // namespace moekit
