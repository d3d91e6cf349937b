#include "model/linear.h"

namespace moekit {

void Linear::init(const std::string& name, Eigen::Index in, Eigen::Index out) {
  weight.init(name + ".weight", out, in, true);
  bias.init_vector(name + ".bias", out, false);
}

void Linear::forward(MatRef x, Mat& y, Cache* cache) const {
  y.noalias() = x * weight.value.transpose();
  y.rowwise() += bias.value.row(0);
  if (cache) cache->x = x;
}

// y = x W^T + b  =>  dW += dy^T x,  db += sum_rows(dy),  dx = dy W.
void Linear::backward(MatRef dy, const Cache& cache, Mat* dx) {
  weight.grad.noalias() += dy.transpose() * cache.x;
  bias.grad += dy.colwise().sum();
  if (dx) dx->noalias() = dy * weight.value;
}

void Linear::collect(ParamList& params) {
  params.push_back(&weight);
  params.push_back(&bias);
}

}  // namespace moekit
