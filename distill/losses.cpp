#include "distill/losses.h"

#include <algorithm>
#include <cmath>

#include "model/error.h"
#include "model/loss.h"

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

namespace {

std::vector<float> flat(MatRef m) {
  std::vector<float> v(static_cast<size_t>(m.size()));
  Eigen::Map<Mat>(v.data(), m.rows(), m.cols()) = m;  // Mat is row-major: v is row-major too
  return v;
}

// Bernoulli KL(p_t || p_s) summed via BCE(zs, p_t) - H(p_t), mean over entries, at temperature T.
double multilabel_kd(MatRef zs, MatRef zt, double T, Mat* grad) {
  const Mat ss = zs / static_cast<float>(T), st = zt / static_cast<float>(T);
  const std::vector<float> pt = flat(sigmoid(st));
  double entropy = 0;
  for (Eigen::Index i = 0; i < st.size(); ++i) {
    const double z = st.data()[i], p = pt[static_cast<size_t>(i)];
    // -[p log s(z) + (1-p) log(1-s(z))] with p = s(z): the same stable form as the BCE
    entropy += std::log1p(std::exp(-std::abs(z))) + std::max(z, 0.0) - p * z;
  }
  entropy /= static_cast<double>(std::max<Eigen::Index>(1, st.size()));
  const double factor = T != 1.0 ? T * T : 1.0;
  const double bce = bce_with_logits(ss, pt, grad);
  if (grad) *grad *= static_cast<float>(factor / T);
  return factor * std::max(0.0, bce - entropy);
}

// Per-token KD: kd_loss over the real tokens' rows only (padding rows get zero gradient).
double token_kd(MatRef zs, MatRef zt, KdKind kind, double temperature, const Batch* batch, Mat* grad) {
  if (!batch || static_cast<Eigen::Index>(batch->mask.size()) != zs.rows())
    fail("", "KD: a per-token head needs the batch's token mask");
  const std::vector<uint8_t>* mask = &batch->mask;
  std::vector<Eigen::Index> rows;
  for (size_t i = 0; i < mask->size(); ++i)
    if ((*mask)[i]) rows.push_back(static_cast<Eigen::Index>(i));
  if (grad) grad->setZero(zs.rows(), zs.cols());
  if (rows.empty()) return 0;
  Mat s(static_cast<Eigen::Index>(rows.size()), zs.cols()), t(s.rows(), zs.cols());
  for (size_t k = 0; k < rows.size(); ++k) {
    s.row(static_cast<Eigen::Index>(k)) = zs.row(rows[k]);
    t.row(static_cast<Eigen::Index>(k)) = zt.row(rows[k]);
  }
  Mat g;
  const double loss = kd_loss(s, t, kind, temperature, grad ? &g : nullptr);
  if (grad)
    for (size_t k = 0; k < rows.size(); ++k) grad->row(rows[k]) = g.row(static_cast<Eigen::Index>(k));
  return loss;
}

// QA KD: kd_loss of the start and of the end distributions over each sequence's real tokens, mean.
double span_kd(MatRef zs, MatRef zt, KdKind kind, double temperature, const Batch* batch, Mat* grad) {
  if (!batch || batch->n_tok() != zs.rows()) fail("", "KD: a question-answering head needs the batch's shape");
  if (grad) grad->setZero(zs.rows(), zs.cols());
  double loss = 0;
  for (int column : {0, 1}) {
    Mat g;
    loss += 0.5 * kd_loss(span_matrix(zs, column, *batch), span_matrix(zt, column, *batch), kind, temperature,
                          grad ? &g : nullptr);
    if (grad) add_span_gradient(0.5f * g, column, *batch, *grad);
  }
  return loss;
}

}  // namespace

double task_kd_loss(Task task, MatRef zs, MatRef zt, KdKind kind, double temperature, Mat* grad,
                    const Batch* batch) {
  if (zs.rows() != zt.rows() || zs.cols() != zt.cols())
    fail("", "KD: student logits " + shape_str(zs.rows(), zs.cols()) + " vs teacher " + shape_str(zt.rows(), zt.cols()) +
                 " (the models must share the label set)");
  switch (task) {
    case Task::single_label: return kd_loss(zs, zt, kind, temperature, grad);
    case Task::regression:
      if (temperature != 1.0) fail("", "--temperature: a regression head has no distribution to soften (use 1)");
      return mse_loss(zs, flat(zt), grad);
    case Task::multi_label: return multilabel_kd(zs, zt, temperature, grad);
    case Task::token_classification: return token_kd(zs, zt, kind, temperature, batch, grad);
    case Task::question_answering: return span_kd(zs, zt, kind, temperature, batch, grad);
  }
  fail("", "unknown task");
}

double attention_kl(MatRef ps, MatRef pt, const std::vector<uint8_t>& mask, int64_t seq, int64_t heads, Mat* grad) {
  if (ps.rows() != pt.rows() || ps.cols() != pt.cols())
    fail("", "attention distillation: student attention " + shape_str(ps.rows(), ps.cols()) + " vs teacher " +
                 shape_str(pt.rows(), pt.cols()) + " (the models need the same number of heads)");
  if (seq <= 0 || ps.cols() != seq || static_cast<int64_t>(mask.size()) * heads != ps.rows())
    fail("", "attention distillation: probabilities do not match the batch");
  if (grad) grad->setZero(ps.rows(), ps.cols());
  int64_t rows = 0;
  for (uint8_t m : mask) rows += m;
  rows *= heads;
  if (rows == 0) return 0;
  double sum = 0;
  for (Eigen::Index r = 0; r < ps.rows(); ++r) {
    const int64_t b = r / (heads * seq), i = r % seq;
    if (!mask[static_cast<size_t>(b * seq + i)]) continue;  // a padded query row
    for (Eigen::Index j = 0; j < seq; ++j) {
      const double p = pt(r, j);
      // max(): a student probability that underflowed to 0 where the teacher's is not.
      if (p > 0) sum += p * (std::log(p) - std::log(std::max(static_cast<double>(ps(r, j)), 1e-30)));
    }
    if (grad) grad->row(r) = (ps.row(r) - pt.row(r)) / static_cast<float>(rows);
  }
  return sum / static_cast<double>(rows);
}

}  // namespace moekit::distill
