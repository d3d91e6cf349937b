#include "tests/support/gradcheck.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <vector>

namespace moekit::test {

std::function<bool(Eigen::Index)> skip_if_changes(Mat& x, float eps, std::function<std::vector<int32_t>()> observe) {
  return [&x, eps, observe = std::move(observe)](Eigen::Index i) {
    const std::vector<int32_t> base = observe();
    float* v = x.data() + i;
    const float saved = *v;
    bool changed = false;
    for (float d : {eps, -eps}) {
      *v = saved + d;
      changed = changed || observe() != base;
    }
    *v = saved;
    return changed;
  };
}

double weighted_sum(const Mat& r, const Mat& y) {
  REQUIRE(r.rows() == y.rows());
  REQUIRE(r.cols() == y.cols());
  double s = 0;
  for (Eigen::Index i = 0; i < y.size(); ++i) s += static_cast<double>(r.data()[i]) * y.data()[i];
  return s;
}

Mat random_mat(Rng& rng, Eigen::Index rows, Eigen::Index cols, double scale) {
  Mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(rng.normal() * scale);
  return m;
}

void check_gradient(const std::string& what, Mat& x, const Mat& analytic, const std::function<double()>& loss,
                    const GradTolerance& tol, const std::function<bool(Eigen::Index)>& skip) {
  INFO("gradient of " << what);
  REQUIRE(x.rows() == analytic.rows());
  REQUIRE(x.cols() == analytic.cols());
  std::vector<Eigen::Index> idx(static_cast<size_t>(x.size()));
  std::iota(idx.begin(), idx.end(), 0);
  Rng pick(0x5eed ^ static_cast<uint64_t>(x.size()));
  for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[pick.below(i)]);
  if (static_cast<int>(idx.size()) > tol.nmax) idx.resize(static_cast<size_t>(tol.nmax));

  double dot = 0, na = 0, nn = 0;
  int checked = 0, bad = 0;
  for (Eigen::Index i : idx) {
    if (skip && skip(i)) continue;
    float* v = x.data() + i;
    const float saved = *v;
    *v = saved + tol.eps;
    const double lp = loss();
    *v = saved - tol.eps;
    const double lm = loss();
    *v = saved;
    const double num = (lp - lm) / (2.0 * static_cast<double>(tol.eps));
    const double ana = analytic.data()[i];
    dot += num * ana;
    na += ana * ana;
    nn += num * num;
    ++checked;
    if (std::abs(ana - num) > tol.abs + tol.rel * std::abs(num)) {
      if (++bad <= 5) UNSCOPED_INFO(what << "[" << i << "]: analytic " << ana << " numeric " << num);
    }
  }
  CHECK(bad == 0);
  REQUIRE(checked > 0);
  // The cosine is only meaningful when the gradient is well above the noise floor: some true
  // gradients are exactly zero (attention key bias: softmax ignores a per-row constant), and
  // then both vectors are round-off. The per-entry check above covers those.
  const double rms = std::sqrt(nn / checked);
  if (rms > 10 * tol.abs) {
    const double cosine = dot / std::sqrt(na * nn + 1e-300);
    INFO("cosine " << cosine << " over " << checked << " entries");
    CHECK(cosine >= tol.cosine);
  }
}

}  // namespace moekit::test
