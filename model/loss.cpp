#include "model/loss.h"

#include <cmath>

#include "model/error.h"

namespace moekit {

Mat softmax_rows(MatRef logits) {
  Mat p(logits.rows(), logits.cols());
  for (Eigen::Index r = 0; r < logits.rows(); ++r) {
    const float mx = logits.row(r).maxCoeff();
    p.row(r) = (logits.row(r).array() - mx).exp().matrix();
    p.row(r) /= p.row(r).sum();
  }
  return p;
}

// L = mean_r -log p[r, y_r];  dL/dlogits = (p - onehot(y)) / rows.
double softmax_cross_entropy(MatRef logits, const std::vector<int>& labels, Mat* dlogits) {
  const Eigen::Index rows = logits.rows();
  if (static_cast<Eigen::Index>(labels.size()) != rows)
    fail("", "cross-entropy: " + std::to_string(labels.size()) + " labels for " + std::to_string(rows) + " rows");
  double loss = 0;
  if (dlogits) dlogits->resize(rows, logits.cols());
  for (Eigen::Index r = 0; r < rows; ++r) {
    const int y = labels[static_cast<size_t>(r)];
    if (y < 0 || y >= logits.cols()) fail("", "cross-entropy: label " + std::to_string(y) + " out of range");
    const double mx = logits.row(r).maxCoeff();
    double sum = 0;
    for (Eigen::Index c = 0; c < logits.cols(); ++c) sum += std::exp(logits(r, c) - mx);
    const double log_z = mx + std::log(sum);
    loss += log_z - logits(r, y);
    if (dlogits) {
      for (Eigen::Index c = 0; c < logits.cols(); ++c)
        (*dlogits)(r, c) = static_cast<float>(std::exp(logits(r, c) - log_z) / rows);
      (*dlogits)(r, y) -= 1.0f / static_cast<float>(rows);
    }
  }
  return loss / static_cast<double>(rows);
}

}  // namespace moekit
