// Dense -> MoE conversion (DESIGN.md 4.2, 4.3): plan each chosen layer's split, slice its FFN
// into experts (MoeFFN::from_dense) and attach a router; the config gains its "moe" section.
// Go-Wider sharing (DESIGN.md 4.4, --share-groups / --share-every): the G layers of a group get
// one MoE FFN whose N experts are slices of their FFNs: layer i of the group gives
// N/G (+1 for the first N mod G layers) experts, split from its own FFN by the chosen method,
// in group order. The router defaults to a learned gate; each layer keeps its LayerNorms.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compress/importance.h"
#include "compress/layer_spec.h"
#include "compress/split_plan.h"
#include "model/bert.h"

namespace moekit::compress {

struct MoefyOptions {
  std::string model, out, importance, data;
  int experts = 4;
  int expert_size = 0;  // 0 = intermediate_size / 4
  int shared = -1;      // -1 = intermediate_size / 6 for method importance, else 0
  std::string method = "importance";
  std::string shared_mode = "copy";
  std::string router;  // empty = hash, or gate when sharing
  int top_k = 1;
  std::string layers;  // "0,2,4"; empty = all
  uint64_t seed = 0;
  std::string norm;             // expert | layer; empty = expert, or layer when sharing
  std::string share_groups;     // "0-1,2-3" or "0+2,1+3"
  int share_every = 0;          // groups of K consecutive MoE layers
  std::string share_attention;  // empty (own attention), mean or first
  std::string fit_router;       // data: fit the gate routers to the dense activations (route_fit.h)
  int fit_examples = 1000;

  template <class V>
  void visit(V& v) {
    v("model", model, "dense model directory to convert", true);
    v("out", out, "output MoE model directory", true);
    v("experts", experts, "experts per MoE layer (N)", false);
    v("expert-size", expert_size, "neurons per expert (D); 0 = intermediate_size / 4", false);
    v("shared", shared, "neurons shared by every expert (S, method importance); -1 = intermediate_size / 6", false);
    v("method", method,
      "split: importance (MoEBERT), cluster (balanced k-means), random, upcycle (every expert a copy of the FFN, or of "
      "its --expert-size most important neurons)",
      false);
    v("shared-mode", shared_mode,
      "copy (MoEBERT: each expert holds the --shared neurons) or tied (one always-on shared FFN of them, experts of "
      "D - S routed neurons, outputs summed)",
      false);
    v("router", router,
      "hash (seeded table), hash-balance (from --data token counts), gate (learned, per token), gate-sentence (learned, "
      "one expert per sequence from its mean-pooled input); default hash, gate when sharing",
      false);
    v("top-k", top_k, "experts per token (gate router)", false);
    v("importance", importance, "importance.h5 from `moekit importance` (method importance)", false);
    v("data", data, "training data: token counts for --router hash-balance", false);
    v("layers", layers, "comma-separated layer indices to convert (default all)", false);
    v("seed", seed, "seed for hash tables, random splits, k-means and gate init", false);
    v("norm", norm, "FFN LayerNorm: expert (one per expert, MoEBERT) or layer (one per layer after the mixture); "
                    "default expert, layer when sharing", false);
    v("share-groups", share_groups, "Go-Wider: layers sharing one MoE FFN, e.g. 0-3,4-7 or 0+2,1+3", false);
    v("share-every", share_every, "Go-Wider: groups of K consecutive MoE layers (instead of --share-groups)", false);
    v("share-attention", share_attention, "groups also share attention, initialised as the layers' mean or the first's",
      false);
    v("fit-router", fit_router,
      "data (TSV/JSONL): fit the gate routers to predict the expert whose dense neurons fire most (MoEfication) "
      "instead of a random init",
      false);
    v("fit-examples", fit_examples, "examples of --fit-router used (the first ones)", false);
  }
};

// Resolved sizes and layer list for `config` (defaults filled in); throws Error on bad values.
MoefyOptions resolve_moefy_options(const MoefyOptions& options, const BertConfig& config);

// Converts the chosen dense layers in place. `importance` is needed for method importance;
// `token_counts` (per vocabulary id) for router hash-balance. Returns the plan of each layer.
std::vector<SplitPlan> moefy(BertModel& model, const MoefyOptions& resolved, const Importance* importance,
                             const std::vector<int64_t>* token_counts);

}  // namespace moekit::compress
