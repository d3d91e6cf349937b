// Central finite-difference gradient checks (STYLE.md 2.7, after ggml's test harness and
// gemma's TestNear). The loss is L = sum(R * y) with a fixed random R so every output matters.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "model/rng.h"
#include "model/tensor.h"

namespace moekit::test {

// Float forward passes: with eps = 1e-2 the central difference has O(eps^2) truncation error and
// about 1e-7 * |L| / eps round-off, so entries are compared with abs 2e-3 + rel 2e-2 and the whole
// sampled tensor must point the same way (cosine >= 0.9995). A wrong backward (missing term, wrong
// transpose, wrong scale) is off by O(1) and fails both.
struct GradTolerance {
  float eps = 1e-2f;
  double abs = 2e-3;
  double rel = 2e-2;
  double cosine = 0.9995;
  int nmax = 64;  // sampled entries per tensor
};

// Perturbs sampled entries of `x` in place, evaluates `loss` (which must read x) at x +- eps and
// compares (L+ - L-) / 2eps with analytic(entry). `skip`, when given, excludes entries (kinks).
// Uses Catch2 assertions; `what` names the tensor in failure messages.
void check_gradient(const std::string& what, Mat& x, const Mat& analytic, const std::function<double()>& loss,
                    const GradTolerance& tol = {}, const std::function<bool(Eigen::Index)>& skip = nullptr);

// A `skip` for check_gradient: the entries of x whose perturbation by +-eps changes what
// `observe` returns (e.g. the routing choices: a kink where the loss is not differentiable).
// `observe` must read x; it runs again for every entry checked.
std::function<bool(Eigen::Index)> skip_if_changes(Mat& x, float eps, std::function<std::vector<int32_t>()> observe);
// L = sum(R * y) in double.
double weighted_sum(const Mat& r, const Mat& y);

Mat random_mat(Rng& rng, Eigen::Index rows, Eigen::Index cols, double scale = 1.0);

}  // namespace moekit::test
