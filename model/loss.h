// Task losses on the head's logits: softmax cross-entropy (single-label), MSE (regression),
// BCE with logits (multi-label), and task_loss() choosing by config.task.
#pragma once
#include <vector>

#include "model/batch.h"
#include "model/config.h"
#include "model/tensor.h"

namespace moekit {

// Mean over rows of -log softmax(logits)[label]. Writes dL/dlogits into dlogits when given.
double softmax_cross_entropy(MatRef logits, const std::vector<int>& labels, Mat* dlogits);

// Token classification: the mean of -log softmax(logits)[label] over the rows whose label is not
// Batch::kIgnoreToken (torch's ignore_index = -100, as HF's token classifiers); those rows get zero
// gradient. 0 (and a zero gradient) when every row is ignored.
double token_cross_entropy(MatRef logits, const std::vector<int>& labels, Mat* dlogits);

// Question answering: column `column` (0 = start, 1 = end) of per-token logits [batch * seq, 2]
// as [batch, seq], one row per sequence, padding positions at kMaskedSpanLogit (softmax 0 there).
constexpr float kMaskedSpanLogit = -1e9f;
Mat span_matrix(MatRef logits, int column, const Batch& batch);
// Adds a [batch, seq] gradient of span_matrix back into column `column` of dlogits (real tokens only).
void add_span_gradient(MatRef dspan, int column, const Batch& batch, Mat& dlogits);

// Extractive QA (HF *ForQuestionAnswering): (CE(start) + CE(end)) / 2, each the mean over the
// batch's sequences of -log softmax over the sequence's real tokens at the gold position
// (batch.start_positions / end_positions). HF's softmax also runs over padding; here padding
// is masked, so a padded batch scores as each sequence alone would.
double span_cross_entropy(MatRef logits, const Batch& batch, Mat* dlogits);

// Row-wise softmax (numerically stable).
Mat softmax_rows(MatRef logits);

// Mean over every entry of (logits - targets)^2 (torch MSELoss); targets row-major like logits.
//   dL/dz = 2 (z - y) / n
double mse_loss(MatRef logits, const std::vector<float>& targets, Mat* dlogits);

// Mean over every entry of -[y log s(z) + (1 - y) log(1 - s(z))], s = sigmoid (torch
// BCEWithLogitsLoss; y may be any probability, e.g. a teacher's). dL/dz = (s(z) - y) / n.
double bce_with_logits(MatRef logits, const std::vector<float>& targets, Mat* dlogits);

// Element-wise logistic function.
Mat sigmoid(MatRef logits);

// The loss of `task` against the batch's gold labels (batch.labels for single-label,
// batch.token_labels for token classification, start/end positions for QA, batch.targets otherwise); Error when the batch lacks them.
double task_loss(Task task, MatRef logits, const Batch& batch, Mat* dlogits);

}  // namespace moekit
