// Mixture-of-Experts FFN sub-block (DESIGN.md 4.2, 4.3): a router picks top_k experts per token;
//   y_t = sum over chosen e of g_te * LN_e(x_t + dropout(W2_e act(W1_e x_t + b1_e) + b2_e))
// with g = 1 (hash), the raw gate probability (gate top-1) or the renormalised ones (top-k > 1).
// The LayerNorm is inside each expert, as MoEBERT's code has it (expert_norm). Without it (config
// moe.norm "layer", Switch/WideNet) y_t = sum_e g_te E_e(x_t) is the FFN part alone and the
// encoder layer applies residual, dropout and its own LayerNorm (model/encoder_layer.h).
// Dispatch: each expert gathers its token rows, runs one GEMM pair, and the results are combined
// in fixed expert order (OpenMP over experts; each writes only its own buffers), so the cost
// scales with the tokens per expert and 1 and 2 threads agree.
//
// Around the dispatch (issue 19): a tied shared FFN (config moe.shared_mode "tied"), run once for
// every token and added inside each chosen expert before its LayerNorm (norm "expert":
// y_t = sum_e g_te LN_e(x_t + dropout(S(x_t) + W2_e act(W1_e x_t + b1_e) + b2_e)), so at conversion it
// equals the copy split) or to the mixture (norm "layer": S(x_t) + sum_e g_te E_e(x_t)); training-only
// capacity (slots over an expert's capacity skip it: the expert is replaced by the identity, i.e. the
// residual, or by 0 under norm "layer") and router jitter. Inference is always dropless and noiseless.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "model/batch.h"
#include "model/dense_ffn.h"
#include "model/expert.h"
#include "model/expert_kernel.h"
#include "model/expert_kernel_int8.h"
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
  int64_t routed_slots = 0;   // real (token, choice) slots routed
  int64_t dropped_slots = 0;  // of those, slots over capacity (training with capacity_factor > 0)
};

// Training-only routing options (moekit train/distill --capacity-factor, --router-jitter); they
// apply only when forward gets a dropout Rng (training), so evaluation stays dropless.
struct MoeTrainRouting {
  // > 0: expert capacity ceil(capacity_factor * real_tokens * top_k / n_experts) slots; real
  // slots past it (in token order, GShard/Switch) skip the expert. 0 = dropless.
  double capacity_factor = 0;
  // > 0: the router's input is multiplied element-wise by U(1 - jitter, 1 + jitter) (Switch).
  double jitter = 0;
};

struct MoeFFN {
  std::string prefix;  // "...layer.N.moe."
  std::vector<ExpertFFN> experts;
  Router router;
  float hidden_dropout = 0.1f;
  bool expert_norm = true;  // LayerNorm (and residual, dropout) inside each expert
  // moe.shared_mode "tied": the always-on shared FFN of the S most important neurons (no LayerNorm;
  // "...moe.shared_expert.*"). Absent for copy (and for tied with S = 0).
  std::optional<ExpertFFN> shared_expert;
  // Inference with a tied shared FFN, top-1 and expert LayerNorms (pack_tied_for_inference): each
  // expert (D - S neurons) fused with the shared FFN (S) into one FFN of D ([W1_s; W1_e], [W2_s W2_e],
  // b2_s + b2_e), which is exactly S(x) + E_e(x) in one pair of products instead of two (the copy
  // layout's speed; top-k > 1 would run S k times). Float weights only (int8 W2 rows carry one
  // scale each, so [W2_s W2_e] cannot be joined). Dropped by backward and set_precision.
  std::shared_ptr<const std::vector<ExpertFFN>> tied_fused;
  // fp32 inference of top-1 experts with their own LayerNorms, when they are small enough
  // (model/expert_kernel.h): expert e (tied_fused's e when there is one) laid out for the fused
  // kernel, which then runs the expert's rows in one pass. Dropped with tied_fused.
  std::shared_ptr<const std::vector<ExpertKernelWeights>> expert_kernels;
  // The same for int8 experts (model/expert_kernel_int8.h; a tied shared FFN runs inside each).
  std::shared_ptr<const std::vector<ExpertKernelInt8Weights>> expert_kernels_int8;
  MoeTrainRouting train_routing;  // not saved

  struct Cache {
    Routing routing;
    std::vector<ExpertFFN::Cache> experts;
    std::vector<Mat> out;  // gate router: each expert's output rows before the gate weight
    GateRouter::Cache gate;
    ExpertFFN::Cache shared;
    Mat jitter;                  // router input noise (empty: none)
    std::vector<int32_t> dropped;  // slots over capacity
    Mat dropped_x;                 // their tokens' x rows (the gate gradient of a skipped slot)
  };

  // A fresh layer from config.moe: zero weights, LayerNorms 1/0, neuron_index -1, hash table
  // make_hash_table(vocab, n, layer) or a zero gate; n = config.moe->experts_at(layer).
  // layer_prefix "bert.encoder.layer.N.".
  void init(const std::string& layer_prefix, const BertConfig& config, int64_t layer);
  // Slices a dense FFN: expert e = W1[idx,:], b1[idx], W2[:,idx] with idx = expert_neurons[e]
  // (all the same size, no repeats within one), copies of b2 and the LayerNorm. Names come from
  // the dense FFN's; a GateRouter's weight is renamed to "...moe.router.weight". expert_norm
  // false: the experts get no LayerNorm (the layer keeps the dense one).
  // tied_shared > 0: the first tied_shared neurons of every list (the same in all) become the
  // shared FFN instead, and the experts keep the rest (moe.shared_mode "tied").
  static MoeFFN from_dense(const DenseFFN& dense, const std::vector<std::vector<int32_t>>& expert_neurons,
                           Router router, bool expert_norm = true, int64_t tied_shared = 0);
  // Renames everything to live under `moe_prefix` ("...layer.N.moe."), experts numbered in order.
  void rename(const std::string& moe_prefix);

  int64_t n_experts() const { return static_cast<int64_t>(experts.size()); }
  bool gated() const { return std::holds_alternative<GateRouter>(router); }
  int64_t top_k() const;
  // Throws Error when the layer `layer` disagrees with config (sizes, router kind, table values).
  void check(const BertConfig& config, int64_t layer) const;

  // jitter: multiplies the router input (gate routers; nullptr = none).
  Routing route(MatRef x, const Batch& batch, GateRouter::Cache* cache, const Mat* jitter = nullptr) const;
  void forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng, MoeStats* stats) const;
  // Writes dx; accumulates grads. balance_weight > 0 adds that times d(balance_loss).
  void backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, float balance_weight);
  // Backward of what forward adds around the dispatch: the shared FFN and the slots over capacity.
  void backward_extras(MatRef dy, const Cache& cache, const std::vector<Mat>& dadds, std::vector<float>& dweight,
                       Mat& dx);
  // Builds tied_fused when it applies (see there), packed for inference; else leaves it empty.
  void pack_tied_for_inference();
  // pack_tied_for_inference, then expert_kernels when they apply (see there).
  void pack_for_inference();
  void drop_inference_packs() {
    tied_fused.reset();
    expert_kernels.reset();
    expert_kernels_int8.reset();
  }
  void collect(ParamList& params);
  // ffn_size: the dense intermediate size neuron_index refers to.
  void collect_indices(std::vector<IndexParam>& list, int64_t ffn_size);
};

}  // namespace moekit
