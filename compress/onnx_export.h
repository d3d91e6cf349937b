// `moekit export --format onnx`: the model as one ONNX file (opset 17) that ONNX Runtime runs. Inputs input_ids, attention_mask,
// token_type_ids (int64 [batch, sequence], both axes dynamic; DistilBERT's graph has no
// token_type_ids); output logits [batch, labels].
// MoE layers route for real inside the graph (compress/onnx_graph.h). Checked with
// onnx::checker::check_model and shape inference before an atomic write.
// Goals: exactly moekit's forward (fp32 logits within float round-off). Non-goals: training
// graphs, weights over 2 GB (protobuf's limit; refused with an error), fp16/bf16 graphs.
#pragma once
#include "compress/export.h"

namespace moekit::compress {

// False when moekit was built without libonnx-dev (the command then refuses with a hint).
bool onnx_export_available();

// dtype fp32, or int8 (every Linear weight int8 per output row, embeddings int8 per row; biases,
// LayerNorms and gate routers float). Throws Error for other dtypes or an inference-only model.
ExportSummary export_onnx(const BertModel& model, const ExportOptions& options);

}  // namespace moekit::compress
