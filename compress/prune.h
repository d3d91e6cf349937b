// Removing experts the router never selects (`export --prune --data F`, DESIGN.md 5).
// An expert with no token on the data costs file size and memory but never runs there. Removing
// it leaves every routing choice on that data unchanged: a hash table's entries for the removed
// expert belong to tokens that do not occur in the data; they go to the layer's busiest kept
// expert. A gate router loses the expert's row, so the raw top-1 gate probability renormalises
// over the kept experts: outputs move by the removed experts' probability mass, which the export
// command measures on the data. Top-k > 1 renormalises over the chosen experts anyway, so its
// outputs change only by float rounding.
#pragma once
#include <cstdint>
#include <vector>

#include "model/bert.h"

namespace moekit::compress {

struct PrunedExperts {
  struct Layer {
    int64_t layer = 0;            // the MoE FFN's owner layer
    std::vector<int64_t> removed;  // expert indices before pruning
  };
  std::vector<Layer> layers;   // only layers that lost experts
  int64_t parameters = 0;      // parameter values removed
};

// Parameter values of one expert.
int64_t values_of(ExpertFFN& expert);

// usage: [layer][expert] real tokens routed on the data (distill::run_inference's expert_tokens). A shared MoE FFN counts
// the tokens of every layer that runs it. Each MoE FFN keeps at least top_k experts (the most
// used). Experts are renumbered in order; config.moe.layer_experts records the new counts.
PrunedExperts prune_unused_experts(BertModel& model, const std::vector<std::vector<int64_t>>& usage);

}  // namespace moekit::compress
