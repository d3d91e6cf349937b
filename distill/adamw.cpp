#include "distill/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moekit::distill {

AdamW::AdamW(const ParamList& params, AdamWOptions options) : params_(params), opt_(options) {
  for (Param* p : params_) {
    m_.push_back(Mat::Zero(p->value.rows(), p->value.cols()));
    v_.push_back(Mat::Zero(p->value.rows(), p->value.cols()));
  }
}

// p *= 1 - lr*wd (decay params only); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
void AdamW::step(float lr) {
  ++t_;
  const double bc1 = 1.0 - std::pow(static_cast<double>(opt_.beta1), static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(static_cast<double>(opt_.beta2), static_cast<double>(t_));
  const float step_size = static_cast<float>(lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps;
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = *params_[i];
    const float decay = p.decay ? 1.0f - lr * opt_.weight_decay : 1.0f;
    float* w = p.value.data();
    const float* g = p.grad_buffer().data();  // a parameter no backward reached has zero gradient
    float* m = m_[i].data();
    float* v = v_[i].data();
    const Eigen::Index n = p.value.size();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (Eigen::Index k = 0; k < n; ++k) {
      w[k] *= decay;
      m[k] = b1 * m[k] + (1.0f - b1) * g[k];
      v[k] = b2 * v[k] + (1.0f - b2) * g[k] * g[k];
      w[k] -= step_size * m[k] / (std::sqrt(v[k]) * inv_sqrt_bc2 + eps);
    }
  }
}

// The squared norm as fixed blocks' double sums added in order: the same value at any thread
// count, and the 11M gradients of a small BERT (mostly the word embeddings) no longer one
// thread's serial pass.
double clip_grad_norm(const ParamList& params, double max_norm) {
  constexpr Eigen::Index kBlock = 1 << 15;
  double sq = 0;
  std::vector<double> block_sums;
  for (const Param* p : params) {
    const float* g = p->grad.data();
    const Eigen::Index n = p->grad.size(), blocks = (n + kBlock - 1) / kBlock;
    block_sums.assign(static_cast<size_t>(blocks), 0.0);
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (Eigen::Index b = 0; b < blocks; ++b) {
      const Eigen::Index end = std::min(n, (b + 1) * kBlock);
      double s = 0;
      for (Eigen::Index k = b * kBlock; k < end; ++k) s += static_cast<double>(g[k]) * g[k];
      block_sums[static_cast<size_t>(b)] = s;
    }
    for (double s : block_sums) sq += s;
  }
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm) {
    const float scale = static_cast<float>(max_norm / (norm + 1e-6));
    for (Param* p : params) {
      float* g = p->grad.data();
      const Eigen::Index n = p->grad.size();
#pragma omp parallel for schedule(static) if (n > 65536)
      for (Eigen::Index k = 0; k < n; ++k) g[k] *= scale;
    }
  }
  return norm;
}

}  // namespace moekit::distill
