// TEI's request bodies, parsed and validated (no model involved), and the /predict answer.
//   /predict  {"inputs": "text" | ["text", "pair"] | [item, ...], "truncate": bool, "raw_scores": bool}
//             with item = "text" | ["text"] | ["text", "pair"]; a list of exactly two strings is one
//             pair, as TEI reads it.
//   /tokenize {"inputs": "text" | ["text", ...], "add_special_tokens": bool}
// Wrong JSON or shapes throw RequestError 422; more inputs than max_client_batch 413.
#pragma once
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/tensor.h"

namespace moekit::serve {

struct Sequence {
  std::string text;
  std::optional<std::string> pair;
};

struct PredictRequest {
  std::vector<Sequence> inputs;
  bool batched = false;  // the answer is a list per input (else one list)
  bool truncate = false;
  bool raw_scores = false;
};

struct TokenizeRequest {
  std::vector<std::string> inputs;
  bool add_special_tokens = true;
};

PredictRequest parse_predict(const std::string& body, int max_client_batch);

// A question-answering /predict, as the Hugging Face inference API's question-answering task:
// {"inputs": {"question": "...", "context": "..."} | [{...}, ...]}.
struct QaRequest {
  std::vector<std::pair<std::string, std::string>> inputs;  // question, context
  bool batched = false;
};
QaRequest parse_qa(const std::string& body, int max_client_batch);
TokenizeRequest parse_tokenize(const std::string& body, int max_client_batch);

// Every label with its score, highest first: softmax of the logits (an independent sigmoid per
// label for multi_label), or the logits themselves when raw_scores. Ties keep label order.
// Regression: the one label with the predicted value as its score.
nlohmann::json label_scores(const Eigen::Ref<const RowVec>& logits, const std::vector<std::string>& labels,
                            bool raw_scores, Task task = Task::single_label);

}  // namespace moekit::serve
