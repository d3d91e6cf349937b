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
// batch.token_labels for token classification, batch.targets otherwise); Error when the batch lacks them.
double task_loss(Task task, MatRef logits, const Batch& batch, Mat* dlogits);

}  // namespace moekit
