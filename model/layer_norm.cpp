#include "model/layer_norm.h"

#include <cmath>

#include "model/target_clones.h"

namespace moekit {

void LayerNorm::init(const std::string& name, Eigen::Index hidden, float layer_norm_eps) {
  weight.init_vector(name + ".weight", hidden, false);
  bias.init_vector(name + ".bias", hidden, false);
  weight.value.setOnes();
  eps = layer_norm_eps;
}

namespace {

// One row: two-pass mean and variance in float over the contiguous row (the vectorised sums keep
// one partial sum per lane, so the rounding error stays near 1e-7 relative); subtracting the mean
// first keeps large offsets harmless. Built for AVX-512 and AVX2 as well as the baseline (Eigen's
// own vectors are fixed at the baseline's width when it compiles). xhat may be null.
MOEKIT_CLONES float normalize_row(const float* x, const float* gamma, const float* beta, float eps, Eigen::Index h,
                                  float* y, float* xhat) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (Eigen::Index k = 0; k < h; ++k) sum += x[k];
  const float mean = sum / static_cast<float>(h);
  float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
  for (Eigen::Index k = 0; k < h; ++k) squares += (x[k] - mean) * (x[k] - mean);
  const float rstd = 1.0f / std::sqrt(squares / static_cast<float>(h) + eps);
  if (xhat) {
#pragma omp simd
    for (Eigen::Index k = 0; k < h; ++k) {
      const float v = (x[k] - mean) * rstd;
      xhat[k] = v;
      y[k] = v * gamma[k] + beta[k];
    }
  } else {
#pragma omp simd
    for (Eigen::Index k = 0; k < h; ++k) y[k] = (x[k] - mean) * rstd * gamma[k] + beta[k];
  }
  return rstd;
}

}  // namespace

void LayerNorm::forward(MatRef x, Mat& y, Cache* cache) const {
  const Eigen::Index n = x.rows(), h = x.cols();
  y.resize(n, h);
  if (cache) {
    cache->xhat.resize(n, h);
    cache->rstd.resize(n);
  }
  const float* gamma = weight.value.data();
  const float* beta = bias.value.data();
#pragma omp parallel for schedule(static)
  for (Eigen::Index r = 0; r < n; ++r) {
    const float rstd =
        normalize_row(x.row(r).data(), gamma, beta, eps, h, y.row(r).data(), cache ? cache->xhat.row(r).data() : nullptr);
    if (cache) cache->rstd(r) = rstd;
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

bool is_layer_norm_weight(const std::string& name) {
  return name.find("LayerNorm.weight") != std::string::npos || name.find("layer_norm.weight") != std::string::npos;
}

}  // namespace moekit
