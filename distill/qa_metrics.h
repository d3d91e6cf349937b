// Extractive QA: the best answer span of an example from its features' start/end logits (HF
// run_qa's postprocess_qa_predictions), and SQuAD's official exact match and F1.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/batching.h"
#include "model/config.h"
#include "model/tensor.h"

namespace moekit::distill {

struct QaDecodeOptions {
  int max_answer_tokens = 30;   // run_qa's max_answer_length
  bool null_answers = false;    // SQuAD 2.0: the empty answer may win
  double null_threshold = 0;    // ... when null score - best span score exceeds it
};
QaDecodeOptions qa_decode_options(const BertConfig& config);

struct QaAnswer {
  std::shared_ptr<const io::QaContext> question;  // the question's context, id and gold answers
  std::string text;              // "" = no answer (SQuAD 2.0)
  double score = 0;              // start + end logit of the span (the null score for no answer)
  size_t begin = 0, end = 0;     // byte range in the context
};

// features: one example's features (adjacent in the encoded list, from first); logits: the token
// logits of each, [tokens, 2]. The best span over all windows: start and end on context tokens,
// end >= start, at most max_answer_tokens long, scored start + end logit; its text runs from its
// first word's first byte to its last word's last byte. The null score is the smallest
// [CLS] start + end over the windows, as run_qa.
QaAnswer best_answer(const std::vector<const io::EncodedExample*>& features, const std::vector<MatRef>& logits,
                     const QaDecodeOptions& options);

// best_answer for every question of `features` (grouped by qa_example), in order; token_logits:
// every feature's token logits stacked in feature order, as run_inference and serve give them.
std::vector<QaAnswer> best_answers(MatRef token_logits, const std::vector<io::EncodedExample>& features,
                                   const QaDecodeOptions& options);

// SQuAD's evaluate-v2.0.py: lower case, ASCII punctuation removed, the articles a/an/the dropped,
// whitespace collapsed (non-ASCII letters are kept as they are; Python would lower-case them too).
std::string normalize_answer(const std::string& s);
// Exact match and token F1 of a prediction against the gold answers, the max over them; no gold
// answer (unanswerable) counts as the gold "" (both 1 exactly when the prediction is "" too).
double exact_match(const std::string& prediction, const std::vector<std::string>& gold);
double answer_f1(const std::string& prediction, const std::vector<std::string>& gold);

// exact_match and f1 (fractions in [0, 1]; SQuAD reports them x 100), mean over the questions of
// `features`, from best_answers.
std::map<std::string, double> qa_metrics(MatRef token_logits, const std::vector<io::EncodedExample>& features,
                                         const QaDecodeOptions& options);

}  // namespace moekit::distill
