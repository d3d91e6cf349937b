// One post-LN transformer block: attention sub-block then FFN sub-block. The FFN is the dense
// one, or an MoE FFN when `moe` is set (config.moe lists the layer). `layer.ffn` keeps meaning
// the dense FFN for existing callers; on an MoE layer it is empty (no parameters) and unused.
//
// With config moe.norm "layer" the layer computes y = LN_layer(a + dropout(sum_e g_e E_e(a)))
// with its own LayerNorm (`moe_norm`, named like the dense FFN's output.LayerNorm). Go-Wider
// sharing (DESIGN.md 4.4): the layers of a group point at one MoeFFN owned by the group's first
// layer (moe_owner false on the others), and with share_attention at its attention projections.
#pragma once
#include <memory>

#include "model/attention.h"
#include "model/dense_ffn.h"
#include "model/moe_ffn.h"

namespace moekit {

struct EncoderLayer {
  Attention attention;
  DenseFFN ffn;                 // the FFN of a dense layer
  std::shared_ptr<MoeFFN> moe;  // the FFN of an MoE layer (several layers when shared)
  bool moe_owner = true;        // false: `moe` belongs to an earlier layer (not collected here)
  LayerNorm moe_norm;           // moe->expert_norm false: this layer's LayerNorm after the mixture
  float hidden_dropout = 0.1f;  // of the mixture, when the layer holds the LayerNorm

  struct Cache {
    Attention::Cache attention;
    DenseFFN::Cache ffn;
    MoeFFN::Cache moe;
    Mat moe_mask;  // dropout mask of the mixture (layer norm only; empty in eval)
    LayerNorm::Cache moe_norm;
  };

  // prefix "bert.encoder.layer.N."; an MoE layer when config.moe lists `index`. A layer that
  // shares an earlier layer's MoE FFN (or attention) gets only its own LayerNorms here;
  // BertModel::link_shared points it at the owner's blocks.
  void init(const std::string& prefix, const BertConfig& config, int64_t index = -1);
  bool is_moe() const { return moe != nullptr; }
  bool layer_norm_moe() const { return moe && !moe->expert_norm; }
  // Replaces the FFN by `moe_ffn`, which this layer owns. Without expert norms the dense FFN's
  // LayerNorm becomes the layer's `moe_norm`. The dense FFN's memory is released.
  void set_moe(MoeFFN moe_ffn);
  // Runs `owner`'s MoE FFN (norm "layer"), keeping this layer's LayerNorm from its dense FFN.
  void share_moe(const std::shared_ptr<MoeFFN>& owner);

  // stats (MoE layers only) receives the routing statistics.
  void forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng, MoeStats* stats = nullptr) const;
  // taps: dense layers only. balance_weight: MoE layers only (see MoeFFN::backward).
  // dscores: extra gradient on the attention scores (see Attention::backward).
  void backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, DenseFFN::Taps* taps,
                float balance_weight = 0, const Mat* dscores = nullptr);
  // This layer's parameters: shared blocks only in their owner layer.
  void collect(ParamList& params);
};

}  // namespace moekit
