#include "distill/metrics.h"

#include <cstdint>

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

}  // namespace moekit::distill
