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
    case Task::token_classification:  // token_prediction_json
    case Task::question_answering: break;  // cmd_predict: the best span per question
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

nlohmann::json token_prediction_json(const BertConfig& c, const std::vector<std::string>& words,
                                     const std::vector<int32_t>& word_starts, MatRef token_logits) {
  nlohmann::json tags = nlohmann::json::array(), scores = nlohmann::json::array();
  for (size_t w = 0; w < words.size(); ++w) {
    const int32_t at = w < word_starts.size() ? word_starts[w] : -1;
    if (at < 0 || at >= token_logits.rows()) {
      tags.push_back(nullptr);
      scores.push_back(nullptr);
      continue;
    }
    const auto row = token_logits.row(at);
    Eigen::Index arg = 0;
    const float mx = row.maxCoeff(&arg);
    tags.push_back(c.labels[static_cast<size_t>(arg)]);
    scores.push_back(1.0 / (row.array() - mx).exp().sum());  // softmax at the argmax
  }
  return {{"tokens", words}, {"tags", tags}, {"scores", scores}};
}

}  // namespace moekit::io
