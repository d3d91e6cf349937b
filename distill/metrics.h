// Classification metrics from predictions and gold labels.
#pragma once
#include <vector>

namespace moekit::distill {

struct ClassMetrics {
  double accuracy = 0;
  double macro_f1 = 0;  // mean F1 over classes present in gold or predictions
  int64_t examples = 0;
};

ClassMetrics classification_metrics(const std::vector<int>& predicted, const std::vector<int>& gold, int num_labels);

}  // namespace moekit::distill
