// Inference over a whole dataset: logits in input order (batches grouped by length inside).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "distill/metrics.h"
#include "distill/qa_metrics.h"
#include "io/batching.h"
#include "model/bert.h"

namespace moekit::distill {

struct InferenceResult {
  Mat logits;               // [examples, num_labels], input order (0 rows for a per-token head)
  std::vector<int> predicted;
  // Per-token heads (token classification): every example's token logits stacked in input order,
  // [total tokens, num_labels]; example i's rows start at token_offset[i] (size examples + 1).
  Mat token_logits;
  std::vector<int64_t> token_offset;
  double seconds = 0;       // wall time of the forward passes
  int64_t tokens = 0;       // real (non-padding) tokens processed
  // MoE models: [layer][expert] real tokens routed to each expert over all examples ({} for dense
  // layers); a top-k token counts once in each of its k experts.
  std::vector<std::vector<int64_t>> expert_tokens;
};

// progress_label empty = no progress line. With shards > 1 only the batches b with
// b % shards == shard run (data-parallel evaluation); the other rows stay 0 (logits) and -1.
InferenceResult run_inference(const BertModel& model, const std::vector<io::EncodedExample>& examples,
                              size_t batch_size, const std::string& progress_label = "", size_t shard = 0,
                              size_t shards = 1);

// Accuracy and macro-F1 of `result` against the examples' gold labels (all must be labelled).
ClassMetrics evaluate(const InferenceResult& result, const std::vector<io::EncodedExample>& examples,
                      int num_labels);

// The metrics of `task` by name (all examples labelled):
//   single_label  accuracy, macro_f1
//   regression    pearson, spearman, mse
//   multi_label   micro_f1, macro_f1, accuracy (exact label set), a label predicted when its logit > 0
//   token_classification  entity_f1, entity_precision, entity_recall (strict IOB2, seqeval) and
//                 token_accuracy, over the words that got a token (each word's first sub-token)
//   question_answering  exact_match, f1 (SQuAD's, as fractions) of each example's best span over
//                 its features (`examples` are then the features; qa decoding by `qa`)
// labels: the model's labels (tag names; token classification needs them).
std::map<std::string, double> task_metrics(Task task, const InferenceResult& result,
                                           const std::vector<io::EncodedExample>& examples,
                                           const std::vector<std::string>& labels = {},
                                           const QaDecodeOptions& qa = {});
// The predicted tag index of every word of example i (-1 for words without a token).
std::vector<int> word_predictions(const InferenceResult& result, const io::EncodedExample& example, size_t i);
// The metric that picks the best model by default: accuracy, pearson, micro_f1, entity_f1, f1 (QA).
std::string default_metric(Task task);
// Whether a smaller value of `metric` is better (mse).
bool lower_is_better(const std::string& metric);

}  // namespace moekit::distill
