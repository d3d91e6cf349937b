// `moekit export`: a compact, inference-only checkpoint (DESIGN.md 5).
//   hdf5:        one .h5 file (io/compact.h), fp32 | fp16 | bf16 | int8
//   safetensors: one .safetensors file, fp32 | fp16 | bf16, config and vocabulary in __metadata__
//   onnx:        one .onnx graph for ONNX Runtime, fp32 | int8 (compress/onnx_export.h)
// int8 quantises every 2-D float matrix per output row (Linear weights, embedding tables, whose
// rows are tokens/positions), symmetric; biases and LayerNorm vectors stay float32 (they are
// <1% of the bytes and LayerNorm gains are sensitive). fp16/bf16 convert every float tensor.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "io/vocab.h"
#include "model/bert.h"

namespace moekit::compress {

struct ExportOptions {
  std::string model, out, format = "hdf5", dtype = "int8", data;
  bool prune = false;
  bool external_data = false;        // onnx: weights in OUT.data (always so above 2 GB)
  int64_t merge_experts = 0;         // > 0: MC-SMoE merge to this many experts per layer (with data)
  int64_t prune_experts = 0;         // > 0: keep this many experts per layer by `criterion` (with data)
  std::string criterion = "reap";    // usage | reap (compress/expert_merge.h)
  size_t batch_size = 32;
  int max_seq_len = 0;  // 0 = the model's limit (at most 512)
};

struct ExportSummary {
  uint64_t bytes = 0;
  size_t tensors = 0;
  int64_t pruned_tensors = 0;  // provenance tensors (neuron_index) dropped by --prune
};

// tokenizer_files (name -> contents, io::tokenizer_file_contents) go into HDF5 and safetensors
// files, so an export of a BPE or Unigram model still reads text.
ExportSummary export_model(BertModel& model, const io::Vocab* vocab, bool do_lower_case, const ExportOptions& options,
                           const std::map<std::string, std::string>& tokenizer_files = {});

}  // namespace moekit::compress
