#include "distill/losses.h"

#include <cmath>

#include "model/error.h"

namespace moekit::distill {

double masked_mse(MatRef s, MatRef t, const std::vector<uint8_t>& mask, Mat* grad) {
  if (s.rows() != t.rows() || s.cols() != t.cols())
    fail("", "hidden-state MSE: student " + shape_str(s.rows(), s.cols()) + " vs teacher " + shape_str(t.rows(), t.cols()) +
                 " (distillation needs the same hidden size)");
  int64_t real = 0;
  for (uint8_t m : mask) real += m;
  if (grad) grad->setZero(s.rows(), s.cols());
  if (real == 0) return 0;
  const double denom = static_cast<double>(real) * static_cast<double>(s.cols());
  double sum = 0;
  for (Eigen::Index r = 0; r < s.rows(); ++r) {
    if (!mask[static_cast<size_t>(r)]) continue;
    const auto d = (s.row(r) - t.row(r)).eval();
    sum += d.cast<double>().squaredNorm();
    if (grad) grad->row(r) = d * static_cast<float>(2.0 / denom);
  }
  return sum / denom;
}

double kd_loss(MatRef zs, MatRef zt, KdKind kind, double temperature, Mat* grad) {
  if (zs.rows() != zt.rows() || zs.cols() != zt.cols())
    fail("", "KD: student logits " + shape_str(zs.rows(), zs.cols()) + " vs teacher " + shape_str(zt.rows(), zt.cols()) +
                 " (the models must share the label set)");
  const Eigen::Index rows = zs.rows(), cols = zs.cols();
  const double T = temperature;
  const double factor = T != 1.0 ? T * T : 1.0;
  if (grad) grad->resize(rows, cols);
  double total = 0;
  std::vector<double> ls(static_cast<size_t>(cols)), lt(static_cast<size_t>(cols));
  for (Eigen::Index r = 0; r < rows; ++r) {
    // log-softmax of z / T in double
    auto log_softmax = [&](MatRef z, std::vector<double>& out) {
      double mx = -1e300;
      for (Eigen::Index c = 0; c < cols; ++c) mx = std::max(mx, z(r, c) / T);
      double sum = 0;
      for (Eigen::Index c = 0; c < cols; ++c) sum += std::exp(z(r, c) / T - mx);
      const double lse = mx + std::log(sum);
      for (Eigen::Index c = 0; c < cols; ++c) out[static_cast<size_t>(c)] = z(r, c) / T - lse;
    };
    log_softmax(zs, ls);
    log_softmax(zt, lt);
    double kl_ts = 0, kl_st = 0;
    for (size_t c = 0; c < ls.size(); ++c) {
      kl_ts += std::exp(lt[c]) * (lt[c] - ls[c]);
      kl_st += std::exp(ls[c]) * (ls[c] - lt[c]);
    }
    const double row_loss = kind == KdKind::kl ? kl_ts : 0.5 * (kl_ts + kl_st);
    total += row_loss;
    if (grad) {
      for (size_t c = 0; c < ls.size(); ++c) {
        const double ps = std::exp(ls[c]), pt = std::exp(lt[c]);
        const double g_ts = (ps - pt) / T;
        const double g_st = ps * ((ls[c] - lt[c]) - kl_st) / T;
        const double g = kind == KdKind::kl ? g_ts : 0.5 * (g_ts + g_st);
        (*grad)(r, static_cast<Eigen::Index>(c)) = static_cast<float>(factor * g / static_cast<double>(rows));
      }
    }
  }
  return factor * total / static_cast<double>(rows);
}

}  // namespace moekit::distill
