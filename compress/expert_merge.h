// Expert scoring, pruning and merging on calibration data (issue 19).
//   usage:  slots routed to each expert (what `export --prune` removes by: zero).
//   reap:   REAP's output-weighted score (Lasby et al., 2025): the mean over the tokens routed to
//           expert e of g_e(x) * ||f_e(x)||, f_e = W2_e act(W1_e x + b1_e) + b2_e (the expert's FFN
//           output, before any LayerNorm), g = 1 for hash routers. A rarely chosen expert that
//           moves its tokens a lot scores high; usage would drop it first.
//   merge (MC-SMoE, Li et al., ICLR'24): per layer the K most used experts are kept as dominant;
//           every other expert joins the dominant one it is most similar to (cosine of their
//           router-logit columns over the calibration tokens; hash routers have no logits, so of
//           their outputs on every calibration token), its neurons permutation-aligned to the
//           dominant's (Hungarian matching on [W1 row, b1, W2 column]), then each group is averaged
//           weighted by usage. Hash tables send a merged expert's ids to its group; a gate keeps the
//           dominant's row. Expert provenance (neuron_index) of a merged expert becomes -1.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/batching.h"
#include "model/bert.h"

namespace moekit::compress {

struct ExpertCalibration {
  struct Layer {
    int64_t layer = -1;                // owner layer of the MoE FFN; -1: not an MoE layer
    std::vector<double> usage, reap;   // per expert
    Mat similarity;                    // [n, n] cosine of the experts' logit (or output) columns
  };
  std::vector<Layer> layers;  // one per model layer
};

// Runs the model (eval mode) on the examples; at most max_tokens calibration tokens per layer
// feed the similarity.
ExpertCalibration calibrate_experts(const BertModel& model, const std::vector<io::EncodedExample>& examples,
                                    size_t batch_size, int64_t max_tokens = 4096);

// Keeps the K experts of each MoE layer with the highest score ("usage" or "reap"); returns the
// parameter values removed. Gate routers lose the removed rows; hash ids of a removed expert go to
// the kept expert most similar to it.
int64_t prune_experts_to(BertModel& model, const ExpertCalibration& calibration, int64_t k, const std::string& criterion);

// MC-SMoE merging down to K experts per MoE layer; returns the parameter values removed.
int64_t merge_experts_to(BertModel& model, const ExpertCalibration& calibration, int64_t k);

// Maximum-weight perfect matching of a square score matrix (Hungarian algorithm, O(n^3)):
// result[i] = the column matched to row i.
std::vector<int32_t> max_assignment(const Mat& score);

}  // namespace moekit::compress
