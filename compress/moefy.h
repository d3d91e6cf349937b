// Dense -> MoE conversion (DESIGN.md 4.2, 4.3): plan each chosen layer's split, slice its FFN
// into experts (MoeFFN::from_dense) and attach a router; the config gains its "moe" section.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compress/importance.h"
#include "compress/split_plan.h"
#include "model/bert.h"

namespace moekit::compress {

struct MoefyOptions {
  std::string model, out, importance, data;
  int experts = 4;
  int expert_size = 0;  // 0 = intermediate_size / 4
  int shared = -1;      // -1 = intermediate_size / 6 for method importance, else 0
  std::string method = "importance";
  std::string router = "hash";
  int top_k = 1;
  std::string layers;  // "0,2,4"; empty = all
  uint64_t seed = 0;

  template <class V>
  void visit(V& v) {
    v("model", model, "dense model directory to convert", true);
    v("out", out, "output MoE model directory", true);
    v("experts", experts, "experts per MoE layer (N)", false);
    v("expert-size", expert_size, "neurons per expert (D); 0 = intermediate_size / 4", false);
    v("shared", shared, "neurons shared by every expert (S, method importance); -1 = intermediate_size / 6", false);
    v("method", method, "split: importance (MoEBERT), cluster (balanced k-means), random", false);
    v("router", router, "hash (seeded table), hash-balance (from --data token counts), gate (learned)", false);
    v("top-k", top_k, "experts per token (gate router)", false);
    v("importance", importance, "importance.h5 from `moekit importance` (method importance)", false);
    v("data", data, "training data: token counts for --router hash-balance", false);
    v("layers", layers, "comma-separated layer indices to convert (default all)", false);
    v("seed", seed, "seed for hash tables, random splits, k-means and gate init", false);
  }
};

// Resolved sizes and layer list for `config` (defaults filled in); throws Error on bad values.
MoefyOptions resolve_moefy_options(const MoefyOptions& options, const BertConfig& config);
std::vector<int64_t> parse_layer_list(const std::string& text, int64_t num_layers);

// Converts the chosen dense layers in place. `importance` is needed for method importance;
// `token_counts` (per vocabulary id) for router hash-balance. Returns the plan of each layer.
std::vector<SplitPlan> moefy(BertModel& model, const MoefyOptions& resolved, const Importance* importance,
                             const std::vector<int64_t>* token_counts);

}  // namespace moekit::compress
