// One post-LN transformer block: attention sub-block then FFN sub-block. The FFN is the dense
// one, or an MoE FFN when `moe` is set (config.moe lists the layer). An optional rather than a
// variant so `layer.ffn` keeps meaning the dense FFN for existing callers; on an MoE layer `ffn`
// is empty (no parameters) and unused.
#pragma once
#include <optional>

#include "model/attention.h"
#include "model/dense_ffn.h"
#include "model/moe_ffn.h"

namespace moekit {

struct EncoderLayer {
  Attention attention;
  DenseFFN ffn;               // the FFN of a dense layer
  std::optional<MoeFFN> moe;  // the FFN of an MoE layer

  struct Cache {
    Attention::Cache attention;
    DenseFFN::Cache ffn;
    MoeFFN::Cache moe;
  };

  // prefix "bert.encoder.layer.N."; an MoE layer when config.moe lists `index`.
  void init(const std::string& prefix, const BertConfig& config, int64_t index = -1);
  bool is_moe() const { return moe.has_value(); }
  // Replaces the FFN by `moe_ffn` (the dense FFN's memory is released).
  void set_moe(MoeFFN moe_ffn);

  // stats (MoE layers only) receives the routing statistics.
  void forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng, MoeStats* stats = nullptr) const;
  // taps: dense layers only. balance_weight: MoE layers only (see MoeFFN::backward).
  void backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, DenseFFN::Taps* taps,
                float balance_weight = 0);
  void collect(ParamList& params);
};

}  // namespace moekit
