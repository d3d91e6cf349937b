#include "distill/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>

#include "model/error.h"

namespace moekit::distill {

ClassMetrics classification_metrics(const std::vector<int>& predicted, const std::vector<int>& gold, int num_labels) {
  if (predicted.size() != gold.size()) fail("", "metrics: predictions and labels differ in count");
  ClassMetrics m;
  m.examples = static_cast<int64_t>(gold.size());
  if (gold.empty()) return m;
  std::vector<int64_t> tp(num_labels, 0), fp(num_labels, 0), fn(num_labels, 0);
  int64_t correct = 0;
  for (size_t i = 0; i < gold.size(); ++i) {
    const int p = predicted[i], g = gold[i];
    if (p == g) {
      ++correct;
      ++tp[g];
    } else {
      ++fp[p];
      ++fn[g];
    }
  }
  m.accuracy = static_cast<double>(correct) / static_cast<double>(gold.size());
  double f1_sum = 0;
  int classes = 0;
  for (int c = 0; c < num_labels; ++c) {
    if (tp[c] + fp[c] + fn[c] == 0) continue;  // class absent from both: F1 undefined, skipped (sklearn warns)
    f1_sum += 2.0 * tp[c] / static_cast<double>(2 * tp[c] + fp[c] + fn[c]);
    ++classes;
  }
  m.macro_f1 = classes ? f1_sum / classes : 0;
  return m;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) fail("", "pearson: samples differ in size");
  const double n = static_cast<double>(x.size());
  if (x.size() < 2) return 0;
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n, my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0;
}

std::vector<double> average_ranks(const std::vector<double>& x) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> rank(x.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && x[order[j + 1]] == x[order[i]]) ++j;
    const double mean = (static_cast<double>(i) + static_cast<double>(j)) / 2 + 1;  // ranks i+1..j+1
    for (size_t k = i; k <= j; ++k) rank[order[k]] = mean;
    i = j + 1;
  }
  return rank;
}

RegressionMetrics regression_metrics(const std::vector<double>& predicted, const std::vector<double>& gold) {
  if (predicted.size() != gold.size()) fail("", "metrics: predictions and labels differ in count");
  RegressionMetrics m;
  m.examples = static_cast<int64_t>(gold.size());
  if (gold.empty()) return m;
  for (size_t i = 0; i < gold.size(); ++i) m.mse += (predicted[i] - gold[i]) * (predicted[i] - gold[i]);
  m.mse /= static_cast<double>(gold.size());
  m.pearson = pearson(predicted, gold);
  m.spearman = pearson(average_ranks(predicted), average_ranks(gold));
  return m;
}

MultiLabelMetrics multilabel_metrics(const std::vector<uint8_t>& predicted, const std::vector<uint8_t>& gold,
                                     int num_labels) {
  if (predicted.size() != gold.size() || num_labels <= 0 || gold.size() % static_cast<size_t>(num_labels) != 0)
    fail("", "metrics: predictions and labels differ in shape");
  MultiLabelMetrics m;
  const size_t n = static_cast<size_t>(num_labels);
  m.examples = static_cast<int64_t>(gold.size() / n);
  if (gold.empty()) return m;
  std::vector<int64_t> tp(n, 0), fp(n, 0), fn(n, 0);
  int64_t exact = 0;
  for (size_t e = 0; e < gold.size() / n; ++e) {
    bool same = true;
    for (size_t c = 0; c < n; ++c) {
      const bool p = predicted[e * n + c] != 0, g = gold[e * n + c] != 0;
      tp[c] += p && g;
      fp[c] += p && !g;
      fn[c] += !p && g;
      same = same && p == g;
    }
    exact += same;
  }
  int64_t TP = 0, FP = 0, FN = 0;
  double f1_sum = 0;
  int classes = 0;
  for (size_t c = 0; c < n; ++c) {
    TP += tp[c], FP += fp[c], FN += fn[c];
    if (tp[c] + fp[c] + fn[c] == 0) continue;  // as classification_metrics: absent from both, skipped
    f1_sum += 2.0 * tp[c] / static_cast<double>(2 * tp[c] + fp[c] + fn[c]);
    ++classes;
  }
  m.micro_f1 = TP + FP + FN ? 2.0 * TP / static_cast<double>(2 * TP + FP + FN) : 0;
  m.macro_f1 = classes ? f1_sum / classes : 0;
  m.subset_accuracy = static_cast<double>(exact) / static_cast<double>(m.examples);
  return m;
}

}  // namespace moekit::distill
