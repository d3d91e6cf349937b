// MoEfication's router fitting (Zhang et al., ACL Findings'22), before any distillation: a gate
// router learns to predict which expert the dense FFN's own activations would use. For a token
// with FFN input a, expert e's score is the sum of its neurons' positive activations,
// sum_j max(0, act(W1_e a + b1_e)_j), which right after moefy are the dense neurons' activations
// (the experts are slices of the dense FFN); the target is the best-scoring expert (for the
// sentence gate: the best total over the sequence's real tokens). The gate is fitted by softmax
// cross-entropy (full-batch gradient descent with momentum), layer by layer in order, so every
// layer's inputs come through the already fitted layers before it.
#pragma once
#include <cstdint>
#include <vector>

#include "io/batching.h"
#include "model/bert.h"

namespace moekit::compress {

struct RouteFitOptions {
  int64_t max_examples = 1000;  // of the data, first ones
  int iterations = 300;
  double lr = 1.0;
  size_t batch_size = 32;
};

struct RouteFitLayer {
  int64_t layer = 0;
  int64_t rows = 0;              // tokens (sentence gate: sequences) fitted on
  double agreement_before = 0;  // share of rows whose gate choice is the target, before
  double agreement_after = 0;   // and after the fit
};

// Fits every gate router of `model` (an MoE model fresh from moefy); throws Error for hash routers
// or no examples.
std::vector<RouteFitLayer> fit_routers(BertModel& model, const std::vector<io::EncodedExample>& examples,
                                       const RouteFitOptions& options);

}  // namespace moekit::compress
