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
  const auto gamma = weight.value.row(0).array();
  const auto beta = bias.value.row(0).array();
#pragma omp parallel for schedule(static)
  for (Eigen::Index r = 0; r < n; ++r) {
    // Two-pass mean and variance in float over the contiguous row (Eigen's vectorised sums keep
    // several partial sums, so the rounding error stays near 1e-7 relative); subtracting the
    // mean first keeps large offsets harmless.
    const auto xr = x.row(r).array();
    const float mean = xr.mean();
    const float var = (xr - mean).square().mean();
    const float rstd = 1.0f / std::sqrt(var + eps);
    if (cache) {
      auto xh = cache->xhat.row(r).array();
      xh = (xr - mean) * rstd;
      y.row(r).array() = xh * gamma + beta;
      cache->rstd(r) = rstd;
    } else {
      y.row(r).array() = (xr - mean) * rstd * gamma + beta;
    }
  }
}

// g = dy * gamma;  dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
// dgamma += sum_rows(dy * xhat);  dbeta += sum_rows(dy)
void LayerNorm::backward(MatRef dy, const Cache& cache, Mat& dx) {
  const Eigen::Index n = dy.rows(), h = dy.cols();
  weight.grad_buffer() += dy.cwiseProduct(cache.xhat).colwise().sum();
  bias.grad_buffer() += dy.colwise().sum();
  dx.resize(n, h);
  const auto gamma = weight.value.row(0).array();
#pragma omp parallel for schedule(static)
  for (Eigen::Index r = 0; r < n; ++r) {
    const auto g = dy.row(r).array() * gamma;  // an expression: no per-row allocation
    const auto xh = cache.xhat.row(r).array();
    const float mean_g = g.mean();
    const float mean_gx = (g * xh).mean();
    dx.row(r).array() = cache.rstd(r) * (g - mean_g - xh * mean_gx);
  }
}

void LayerNorm::collect(ParamList& params) {
  params.push_back(&weight);
  params.push_back(&bias);
}

}  // namespace moekit
