#include "io/prediction.h"

#include <cmath>
#include <vector>

namespace moekit::io {

nlohmann::json prediction_json(const BertConfig& c, const Eigen::Ref<const RowVec>& logits) {
  const std::vector<float> values(logits.data(), logits.data() + logits.cols());
  nlohmann::json line;
  switch (c.task) {
    case Task::single_label: {
      Eigen::Index arg = 0;
      logits.maxCoeff(&arg);
      line["label"] = c.labels[static_cast<size_t>(arg)];
      break;
    }
    case Task::regression:
      line["label"] = c.labels[0];
      line["score"] = values[0];
      break;
    case Task::multi_label: {
      nlohmann::json names = nlohmann::json::array(), scores = nlohmann::json::array();
      for (size_t i = 0; i < values.size(); ++i) {
        if (values[i] > 0) names.push_back(c.labels[i]);
        scores.push_back(1 / (1 + std::exp(-static_cast<double>(values[i]))));
      }
      line["labels"] = names;
      line["scores"] = scores;
      break;
    }
  }
  line["logits"] = values;
  return line;
}

}  // namespace moekit::io
