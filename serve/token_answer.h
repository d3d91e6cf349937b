// The /predict answer of a token-classification model for one text, as Hugging Face's
// token-classification pipeline gives it with aggregation_strategy="simple" (whole entities),
// plus the per-word tags `moekit predict` writes:
//   {"tokens": [words], "tags": [tag per word], "scores": [its probability],
//    "entities": [{"entity_group": "PER", "score": mean word probability, "word": "John Smith",
//                  "start": 0, "end": 10}, ...]}
// start/end are Unicode code-point offsets into the text (Python string offsets, as the pipeline
// gives them). Entities are strict IOB2 chunks of the predicted tags; a word without a token
// (truncated) has null tag and score and belongs to no entity.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/token_dataset.h"
#include "model/config.h"
#include "model/tensor.h"

namespace moekit::serve {

nlohmann::json token_answer(const BertConfig& config, const std::string& text, const std::vector<io::WordSpan>& words,
                            const std::vector<int32_t>& word_starts, MatRef token_logits);

}  // namespace moekit::serve
