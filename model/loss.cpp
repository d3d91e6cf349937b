#include "model/loss.h"

#include <algorithm>
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

// L = mean_r -log p[r, y_r];  dL/dlogits = (p - onehot(y)) / rows. With skip_ignored, rows whose
// label is Batch::kIgnoreToken take no part (zero gradient) and the mean is over the others.
static double cross_entropy(MatRef logits, const std::vector<int>& labels, Mat* dlogits, bool skip_ignored) {
  const Eigen::Index rows = logits.rows();
  if (static_cast<Eigen::Index>(labels.size()) != rows)
    fail("", "cross-entropy: " + std::to_string(labels.size()) + " labels for " + std::to_string(rows) + " rows");
  Eigen::Index counted = rows;
  if (skip_ignored) counted = std::count_if(labels.begin(), labels.end(), [](int y) { return y != Batch::kIgnoreToken; });
  double loss = 0;
  if (dlogits) dlogits->setZero(rows, logits.cols());
  if (counted == 0) return 0;
  const float inv = 1.0f / static_cast<float>(counted);
  for (Eigen::Index r = 0; r < rows; ++r) {
    const int y = labels[static_cast<size_t>(r)];
    if (skip_ignored && y == Batch::kIgnoreToken) continue;
    if (y < 0 || y >= logits.cols()) fail("", "cross-entropy: label " + std::to_string(y) + " out of range");
    const double mx = logits.row(r).maxCoeff();
    double sum = 0;
    for (Eigen::Index c = 0; c < logits.cols(); ++c) sum += std::exp(logits(r, c) - mx);
    const double log_z = mx + std::log(sum);
    loss += log_z - logits(r, y);
    if (dlogits) {
      for (Eigen::Index c = 0; c < logits.cols(); ++c)
        (*dlogits)(r, c) = static_cast<float>(std::exp(logits(r, c) - log_z) / static_cast<double>(counted));
      (*dlogits)(r, y) -= inv;
    }
  }
  return loss / static_cast<double>(counted);
}

double softmax_cross_entropy(MatRef logits, const std::vector<int>& labels, Mat* dlogits) {
  return cross_entropy(logits, labels, dlogits, false);
}

double token_cross_entropy(MatRef logits, const std::vector<int>& labels, Mat* dlogits) {
  return cross_entropy(logits, labels, dlogits, true);
}

static void check_targets(const char* what, MatRef logits, const std::vector<float>& targets) {
  if (static_cast<Eigen::Index>(targets.size()) != logits.size())
    fail("", std::string(what) + ": " + std::to_string(targets.size()) + " targets for " +
                 shape_str(logits.rows(), logits.cols()) + " logits");
}

double mse_loss(MatRef logits, const std::vector<float>& targets, Mat* dlogits) {
  check_targets("MSE", logits, targets);
  const double n = static_cast<double>(logits.size());
  if (dlogits) dlogits->resize(logits.rows(), logits.cols());
  double sum = 0;
  for (Eigen::Index r = 0; r < logits.rows(); ++r)
    for (Eigen::Index c = 0; c < logits.cols(); ++c) {
      const double d = static_cast<double>(logits(r, c)) - targets[static_cast<size_t>(r * logits.cols() + c)];
      sum += d * d;
      if (dlogits) (*dlogits)(r, c) = static_cast<float>(2 * d / n);
    }
  return n > 0 ? sum / n : 0;
}

// log(1 + e^-|z|) + max(z, 0) - y z is the stable form of the BCE (torch's).
double bce_with_logits(MatRef logits, const std::vector<float>& targets, Mat* dlogits) {
  check_targets("BCE", logits, targets);
  const double n = static_cast<double>(logits.size());
  if (dlogits) dlogits->resize(logits.rows(), logits.cols());
  double sum = 0;
  for (Eigen::Index r = 0; r < logits.rows(); ++r)
    for (Eigen::Index c = 0; c < logits.cols(); ++c) {
      const double z = logits(r, c), y = targets[static_cast<size_t>(r * logits.cols() + c)];
      sum += std::log1p(std::exp(-std::abs(z))) + std::max(z, 0.0) - y * z;
      if (dlogits) (*dlogits)(r, c) = static_cast<float>((1 / (1 + std::exp(-z)) - y) / n);
    }
  return n > 0 ? sum / n : 0;
}

Mat sigmoid(MatRef logits) { return (1.0f / (1.0f + (-logits.array()).exp())).matrix(); }

Mat span_matrix(MatRef logits, int column, const Batch& batch) {
  if (logits.rows() != batch.n_tok() || logits.cols() != 2)
    fail("", "span logits: expected [" + std::to_string(batch.n_tok()) + ", 2], got " +
                 shape_str(logits.rows(), logits.cols()));
  Mat out(batch.batch, batch.seq);
  for (int64_t b = 0; b < batch.batch; ++b)
    for (int64_t t = 0; t < batch.seq; ++t) {
      const int64_t row = b * batch.seq + t;
      out(b, t) = batch.mask[static_cast<size_t>(row)] ? logits(row, column) : kMaskedSpanLogit;
    }
  return out;
}

void add_span_gradient(MatRef dspan, int column, const Batch& batch, Mat& dlogits) {
  for (int64_t b = 0; b < batch.batch; ++b)
    for (int64_t t = 0; t < batch.seq; ++t) {
      const int64_t row = b * batch.seq + t;
      if (batch.mask[static_cast<size_t>(row)]) dlogits(row, column) += dspan(b, t);
    }
}

double span_cross_entropy(MatRef logits, const Batch& batch, Mat* dlogits) {
  if (static_cast<int64_t>(batch.start_positions.size()) != batch.batch ||
      batch.end_positions.size() != batch.start_positions.size())
    fail("", "span cross-entropy: " + std::to_string(batch.start_positions.size()) + " gold spans for " +
                 std::to_string(batch.batch) + " sequences");
  if (dlogits) dlogits->setZero(logits.rows(), logits.cols());
  double loss = 0;
  for (int column : {0, 1}) {
    Mat d;
    loss += 0.5 * softmax_cross_entropy(span_matrix(logits, column, batch),
                                        column == 0 ? batch.start_positions : batch.end_positions, dlogits ? &d : nullptr);
    if (dlogits) add_span_gradient(0.5f * d, column, batch, *dlogits);
  }
  return loss;
}

double task_loss(Task task, MatRef logits, const Batch& batch, Mat* dlogits) {
  switch (task) {
    case Task::single_label:
      if (batch.labels.empty()) fail("", "the task loss needs labelled examples (cross-entropy against gold labels)");
      return softmax_cross_entropy(logits, batch.labels, dlogits);
    case Task::regression:
      if (batch.targets.empty()) fail("", "the task loss needs labelled examples (MSE against gold values)");
      return mse_loss(logits, batch.targets, dlogits);
    case Task::multi_label:
      if (batch.targets.empty()) fail("", "the task loss needs labelled examples (BCE against gold label sets)");
      return bce_with_logits(logits, batch.targets, dlogits);
    case Task::token_classification:
      if (batch.token_labels.empty()) fail("", "the task loss needs labelled examples (cross-entropy against gold tags)");
      return token_cross_entropy(logits, batch.token_labels, dlogits);
    case Task::question_answering:
      if (batch.start_positions.empty()) fail("", "the task loss needs labelled examples (gold answer spans)");
      return span_cross_entropy(logits, batch, dlogits);
  }
  fail("", "unknown task");
}

}  // namespace moekit
