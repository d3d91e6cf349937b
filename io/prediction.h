// One example's prediction as `moekit predict` writes it (a JSON line), by the model's task:
//   single_label  {"label": argmax name, "logits": [...]}
//   regression    {"label": "LABEL_0", "score": value, "logits": [value]}
//   multi_label   {"labels": [names whose logit > 0, i.e. sigmoid > 0.5], "scores": [sigmoid per
//                 label], "logits": [...]}
//   token_classification  token_prediction_json below
#pragma once
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/tensor.h"

namespace moekit::io {

nlohmann::json prediction_json(const BertConfig& config, const Eigen::Ref<const RowVec>& logits);

// A token-classification example: {"tokens": words, "tags": [the tag of each word's first
// sub-token], "scores": [its softmax probability]}; a word without a token (truncated, or nothing
// left after normalisation) has null for both. token_logits: the example's rows, [tokens, labels].
nlohmann::json token_prediction_json(const BertConfig& config, const std::vector<std::string>& words,
                                     const std::vector<int32_t>& word_starts, MatRef token_logits);

}  // namespace moekit::io
