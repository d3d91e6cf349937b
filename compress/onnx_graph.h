// The BERT graph of a BertModel as an ONNX ModelProto (opset 17), node by node as moekit computes
// it (model/bert.h): embeddings + LayerNormalization; post-LN blocks with the additive padding
// mask (finfo(float32).min, as HF); exact erf GELU (or tanh / ReLU by config); tanh pooler on
// [CLS] (ELECTRA: GELU, DistilBERT: ReLU after pre_classifier); classifier. DistilBERT has no
// token_type_ids input.
// MoE layers (model/moe_ffn.h) route sparsely: the expert of each token from the hash table
// (Gather on input_ids) or the gate (MatMul -> Softmax -> TopK: top-1 weighs with the raw
// probability, top-k > 1 renormalises over the k); then per expert NonZero -> Gather of its rows
// -> its FFN (with its own b2 + LayerNorm for norm "expert": LN_e(x + FFN_e(x))) -> times the gate
// weight -> ScatterND(reduction add) into the mixture, in expert order. Norm "layer": the layer's
// LayerNorm after the mixture. Shared (Go-Wider) blocks are one set of initializers, named by
// their owner layer, that every layer of the group reads.
#pragma once
#include <onnx/onnx_pb.h>

#include "model/bert.h"

namespace moekit::compress {

struct OnnxGraphOptions {
  bool int8 = false;  // Linear weights and embeddings int8 with per-row scales
};

onnx::ModelProto build_onnx_model(const BertModel& model, const OnnxGraphOptions& options);

}  // namespace moekit::compress
