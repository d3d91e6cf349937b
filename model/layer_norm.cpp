#include "model/layer_norm.h"

#include <algorithm>
#include <cmath>

#include "model/error.h"
#include "model/target_clones.h"
#include "model/vector_math.h"

namespace moekit {

void LayerNorm::init(const std::string& name, Eigen::Index hidden, float layer_norm_eps) {
  weight.init_vector(name + ".weight", hidden, false);
  bias.init_vector(name + ".bias", hidden, false);
  weight.value.setOnes();
  eps = layer_norm_eps;
}

namespace {

// y = a + b over one row, built for AVX-512 and AVX2 as well as the baseline (a plain loop here
// ran at the baseline's 128 bits).
MOEKIT_CLONES void add_row(const float* a, const float* b, Eigen::Index h, float* y) {
  for (Eigen::Index k = 0; k < h; ++k) y[k] = a[k] + b[k];
}

}  // namespace

// Rows by model/vector_math's layer_norm_row: two-pass mean and variance in float, vectorised with
// several partial sums per row (rounding error near 1e-7 relative). With a residual, each row's
// sum is formed in y and normalised there.
void LayerNorm::normalize(MatRef x, const MatRef* residual, Mat& y, Cache* cache) const {
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
    const float* in = x.row(r).data();
    float* yr = y.row(r).data();
    if (residual) {
      add_row(in, residual->row(r).data(), h, yr);
      in = yr;
    }
    const float rstd = layer_norm_row(in, gamma, beta, eps, h, yr, cache ? cache->xhat.row(r).data() : nullptr);
    if (cache) cache->rstd(r) = rstd;
  }
}

void LayerNorm::forward(MatRef x, Mat& y, Cache* cache) const { normalize(x, nullptr, y, cache); }

void LayerNorm::forward_sum(MatRef x, MatRef residual, Mat& y, Cache* cache) const {
  if (residual.rows() != x.rows() || residual.cols() != x.cols())
    fail("", "LayerNorm: residual is " + shape_str(residual.rows(), residual.cols()) + ", input " +
                 shape_str(x.rows(), x.cols()));
  normalize(x, &residual, y, cache);
}

// g = dy * gamma;  dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
// dgamma += sum_rows(dy * xhat);  dbeta += sum_rows(dy)
void LayerNorm::backward(MatRef dy, const Cache& cache, Mat& dx) {
  const Eigen::Index n = dy.rows(), h = dy.cols();
  // dgamma and dbeta as fixed 64-row blocks' partial sums (row by row: contiguous, vectorised),
  // added in block order: the same sums at any thread count. Eigen's colwise().sum() of the
  // row-major [tokens, hidden] ran serially, striding down each column (7.8% of a small bf16
  // training step, Intel Xeon with AMX, 2026-12-04).
  constexpr Eigen::Index kBlock = 64;
  const Eigen::Index blocks = (n + kBlock - 1) / kBlock;
  Mat partial_w(blocks, h), partial_b(blocks, h);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (Eigen::Index b = 0; b < blocks; ++b) {
    auto pw = partial_w.row(b), pb = partial_b.row(b);
    pw.setZero();
    pb.setZero();
    for (Eigen::Index r = b * kBlock; r < std::min(n, (b + 1) * kBlock); ++r) {
      pw += dy.row(r).cwiseProduct(cache.xhat.row(r));
      pb += dy.row(r);
    }
  }
  for (Eigen::Index b = 0; b < blocks; ++b) {
    weight.grad_buffer() += partial_w.row(b);
    bias.grad_buffer() += partial_b.row(b);
  }
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
