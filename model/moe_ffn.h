// Mixture-of-Experts FFN sub-block (DESIGN.md 4.2, 4.3): a router picks top_k experts per token;
//   y_t = sum over chosen e of g_te * LN_e(x_t + dropout(W2_e act(W1_e x_t + b1_e) + b2_e))
// with g = 1 (hash), the raw gate probability (gate top-1) or the renormalised ones (top-k > 1).
// The LayerNorm is inside each expert, as MoEBERT's code has it (expert_norm). Without it (config
// moe.norm "layer", Switch/WideNet) y_t = sum_e g_te E_e(x_t) is the FFN part alone and the
// encoder layer applies residual, dropout and its own LayerNorm (model/encoder_layer.h).
// Dispatch: each expert gathers its token rows, runs one GEMM pair, and the results are combined
// in fixed expert order (OpenMP over experts; each writes only its own buffers), so the cost
// scales with the tokens per expert and 1 and 2 threads agree.
#pragma once
#include <string>
#include <variant>
#include <vector>

#include "model/batch.h"
#include "model/dense_ffn.h"
#include "model/expert.h"
#include "model/rng.h"
#include "model/router.h"

namespace moekit {

using Router = std::variant<HashRouter, GateRouter>;

// Integer state saved with the model but not trained (hash tables, neuron_index): the checkpoint
// writes it as I32 [size] and the loader checks every value is in [lo, hi).
struct IndexParam {
  std::string name;
  std::vector<int32_t>* values = nullptr;
  int32_t lo = 0, hi = 0;
};

// Per-forward routing statistics of one MoE layer.
struct MoeStats {
  std::vector<int64_t> load;  // per expert: real tokens routed to it (a top-k token counts k times)
  double balance_loss = 0;    // N * sum_i f_i P_i over real tokens (gate router; 0 for hash)
};

struct MoeFFN {
  std::string prefix;  // "...layer.N.moe."
  std::vector<ExpertFFN> experts;
  Router router;
  float hidden_dropout = 0.1f;
  bool expert_norm = true;  // LayerNorm (and residual, dropout) inside each expert

  struct Cache {
    Routing routing;
    std::vector<ExpertFFN::Cache> experts;
    std::vector<Mat> out;  // gate router: each expert's output rows before the gate weight
    GateRouter::Cache gate;
  };

  // A fresh layer from config.moe: zero weights, LayerNorms 1/0, neuron_index -1, hash table
  // make_hash_table(vocab, n, layer) or a zero gate; n = config.moe->experts_at(layer).
  // layer_prefix "bert.encoder.layer.N.".
  void init(const std::string& layer_prefix, const BertConfig& config, int64_t layer);
  // Slices a dense FFN: expert e = W1[idx,:], b1[idx], W2[:,idx] with idx = expert_neurons[e]
  // (all the same size, no repeats within one), copies of b2 and the LayerNorm. Names come from
  // the dense FFN's; a GateRouter's weight is renamed to "...moe.router.weight". expert_norm
  // false: the experts get no LayerNorm (the layer keeps the dense one).
  static MoeFFN from_dense(const DenseFFN& dense, const std::vector<std::vector<int32_t>>& expert_neurons,
                           Router router, bool expert_norm = true);
  // Renames everything to live under `moe_prefix` ("...layer.N.moe."), experts numbered in order.
  void rename(const std::string& moe_prefix);

  int64_t n_experts() const { return static_cast<int64_t>(experts.size()); }
  bool gated() const { return std::holds_alternative<GateRouter>(router); }
  int64_t top_k() const;
  // Throws Error when the layer `layer` disagrees with config (sizes, router kind, table values).
  void check(const BertConfig& config, int64_t layer) const;

  Routing route(MatRef x, const Batch& batch, GateRouter::Cache* cache) const;
  void forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng, MoeStats* stats) const;
  // Writes dx; accumulates grads. balance_weight > 0 adds that times d(balance_loss).
  void backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, float balance_weight);
  void collect(ParamList& params);
  // ffn_size: the dense intermediate size neuron_index refers to.
  void collect_indices(std::vector<IndexParam>& list, int64_t ffn_size);
};

}  // namespace moekit
