// One example's prediction as `moekit predict` writes it (a JSON line), by the model's task:
//   single_label  {"label": argmax name, "logits": [...]}
//   regression    {"label": "LABEL_0", "score": value, "logits": [value]}
//   multi_label   {"labels": [names whose logit > 0, i.e. sigmoid > 0.5], "scores": [sigmoid per
//                 label], "logits": [...]}
#pragma once
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/tensor.h"

namespace moekit::io {

nlohmann::json prediction_json(const BertConfig& config, const Eigen::Ref<const RowVec>& logits);

}  // namespace moekit::io
