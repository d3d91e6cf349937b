#include "model/layer_norm.h"

#include <cmath>

namespace moekit {

void LayerNorm::init(const std::string& name, Eigen::Index hidden, float layer_norm_eps) {
  weight.init_vector(name + ".weight", hidden, false);
  bias.init_vector(name + ".bias", hidden, false);
  weight.value.setOnes();
  eps = layer_norm_eps;
}

void LayerNorm::forward(MatRef x, Mat& y, Cache* cache) const {
  const Eigen::Index n = x.rows(), h = x.cols();
  y.resize(n, h);
  if (cache) {
    cache->xhat.resize(n, h);
    cache->rstd.resize(n);
  }
#pragma omp parallel for schedule(static)
  for (Eigen::Index r = 0; r < n; ++r) {
    // Two-pass mean/variance in double: exact enough for eps = 1e-12 and large offsets.
    double mean = 0;
    for (Eigen::Index c = 0; c < h; ++c) mean += x(r, c);
    mean /= static_cast<double>(h);
    double var = 0;
    for (Eigen::Index c = 0; c < h; ++c) {
      const double d = x(r, c) - mean;
      var += d * d;
    }
    var /= static_cast<double>(h);
    const float rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float m = static_cast<float>(mean);
    for (Eigen::Index c = 0; c < h; ++c) {
      const float xh = (x(r, c) - m) * rstd;
      y(r, c) = xh * weight.value(0, c) + bias.value(0, c);
      if (cache) cache->xhat(r, c) = xh;
    }
    if (cache) cache->rstd(r) = rstd;
  }
}

// g = dy * gamma;  dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
// dgamma += sum_rows(dy * xhat);  dbeta += sum_rows(dy)
void LayerNorm::backward(MatRef dy, const Cache& cache, Mat& dx) {
  const Eigen::Index n = dy.rows(), h = dy.cols();
  weight.grad += dy.cwiseProduct(cache.xhat).colwise().sum();
  bias.grad += dy.colwise().sum();
  dx.resize(n, h);
#pragma omp parallel for schedule(static)
  for (Eigen::Index r = 0; r < n; ++r) {
    double mean_g = 0, mean_gx = 0;
    for (Eigen::Index c = 0; c < h; ++c) {
      const double g = static_cast<double>(dy(r, c)) * weight.value(0, c);
      mean_g += g;
      mean_gx += g * cache.xhat(r, c);
    }
    mean_g /= static_cast<double>(h);
    mean_gx /= static_cast<double>(h);
    const float rstd = cache.rstd(r);
    for (Eigen::Index c = 0; c < h; ++c) {
      const double g = static_cast<double>(dy(r, c)) * weight.value(0, c);
      dx(r, c) = static_cast<float>(rstd * (g - mean_g - cache.xhat(r, c) * mean_gx));
    }
  }
}

void LayerNorm::collect(ParamList& params) {
  params.push_back(&weight);
  params.push_back(&bias);
}

}  // namespace moekit
