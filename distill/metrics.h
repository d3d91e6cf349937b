// Task metrics from predictions and gold labels: classification (accuracy, macro-F1),
// regression (Pearson, Spearman, MSE), multi-label classification (micro/macro-F1).
#pragma once
#include <cstdint>
#include <vector>

namespace moekit::distill {

struct ClassMetrics {
  double accuracy = 0;
  double macro_f1 = 0;  // mean F1 over classes present in gold or predictions
  int64_t examples = 0;
};

ClassMetrics classification_metrics(const std::vector<int>& predicted, const std::vector<int>& gold, int num_labels);

struct RegressionMetrics {
  double pearson = 0;   // 0 when either side is constant (the correlation is undefined)
  double spearman = 0;  // Pearson of the ranks, ties sharing their mean rank (scipy's spearmanr)
  double mse = 0;
  int64_t examples = 0;
};
RegressionMetrics regression_metrics(const std::vector<double>& predicted, const std::vector<double>& gold);

// Pearson's r of two equally long samples (0 when either is constant).
double pearson(const std::vector<double>& x, const std::vector<double>& y);
// 1-based ranks, ties getting the mean of the ranks they span.
std::vector<double> average_ranks(const std::vector<double>& x);

struct MultiLabelMetrics {
  double micro_f1 = 0;  // F1 of the true/false positives and negatives summed over labels
  double macro_f1 = 0;  // mean per-label F1 over labels present in gold or predictions
  double subset_accuracy = 0;  // examples whose predicted set equals the gold set
  int64_t examples = 0;
};
// predicted, gold: [examples * num_labels] row-major 0/1.
MultiLabelMetrics multilabel_metrics(const std::vector<uint8_t>& predicted, const std::vector<uint8_t>& gold,
                                     int num_labels);

}  // namespace moekit::distill
