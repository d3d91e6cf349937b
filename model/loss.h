// Softmax cross-entropy over class logits, the task loss of classification.
#pragma once
#include <vector>

#include "model/tensor.h"

namespace moekit {

// Mean over rows of -log softmax(logits)[label]. Writes dL/dlogits into dlogits when given.
double softmax_cross_entropy(MatRef logits, const std::vector<int>& labels, Mat* dlogits);

// Row-wise softmax (numerically stable).
Mat softmax_rows(MatRef logits);

}  // namespace moekit
