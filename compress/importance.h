// MoEBERT's importance score of every FFN neuron (Zuo et al., NAACL'22, as its official code):
//   I_j = sum over examples x of | sum_k W1[j,k] dL(x)/dW1[j,k] + sum_k W2[k,j] dL(x)/dW2[k,j] |
// with L(x) the task loss of x against its gold label (cross-entropy, MSE for regression, BCE for
// multi-label: model/loss.h task_loss), model in eval mode, biases not scored.
// One batched backward gives every example's term (DESIGN.md 4.1): with z = W1 x + b1, h = act(z),
//   term(x, j) = sum over x's tokens t of ( dz[t,j] * (z[t,j] - b1[j]) + dh[t,j] * h[t,j] ).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "io/batching.h"
#include "model/bert.h"

namespace moekit::compress {

struct Importance {
  std::vector<std::vector<double>> layers;  // [layer][neuron]; empty for layers that are not dense
  int64_t examples = 0;
  bool verified = true;  // read side: false for a file without a checksum (older moekit)
};

// Scores dense FFN neurons of every dense layer on labelled examples. max_batches 0 = all.
// Data-parallel: with shards > 1 only the batches b with b % shards == shard are scored; the sum of
// the shards' scores and example counts is the whole run's.
Importance score_importance(BertModel& model, const std::vector<io::EncodedExample>& examples, size_t batch_size,
                            int64_t max_batches = 0, bool progress = false, size_t shard = 0, size_t shards = 1);

// HDF5: /importance/layer_<i> float datasets (length intermediate_size) + attributes.
void write_importance(const std::filesystem::path& path, const Importance& importance, const std::string& model_path,
                      const std::string& data_path);
Importance read_importance(const std::filesystem::path& path);

}  // namespace moekit::compress
