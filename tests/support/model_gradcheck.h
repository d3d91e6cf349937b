// The whole-model gradient check the architecture and task-head tests share: the backward of a
// loss on the logits against central finite differences of every parameter.
#pragma once
#include <functional>

#include "model/bert.h"
#include "tests/support/gradcheck.h"

namespace moekit::test {

// loss(logits, dlogits or nullptr) -> value. drop: the dropout seed of train mode (replayed for
// every evaluation), nullptr = eval mode. Samples tol.nmax entries per tensor. kinks, when given,
// observes the model's discrete choices (e.g. which ReLU inputs are positive): entries whose
// perturbation changes them are skipped (skip_if_changes).
void check_model_gradient(BertModel& model, const Batch& batch,
                          const std::function<double(MatRef, Mat*)>& loss, const Rng* drop,
                          const GradTolerance& tol, const std::function<std::vector<int32_t>()>& kinks = nullptr);

}  // namespace moekit::test
