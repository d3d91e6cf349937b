// File tensors -> model parameters by Hugging Face name. Every missing, misshapen or unreadable
// tensor is reported in one error (CTranslate2's validate()); known HF aliases are accepted:
// legacy LayerNorm gamma/beta, encoder names without the "bert."/"roberta." prefix.
// Integer state (MoE hash tables, neuron_index) binds by exact name, with its values range-checked.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "model/moe_ffn.h"
#include "model/param.h"

namespace moekit::io {

struct BindResult {
  std::vector<std::string> warnings;       // ignored tensors, new heads
  std::vector<std::string> missing_head;   // head parameters absent from the file (left as they are)
  std::map<std::string, int> dtype_counts; // stored dtype -> tensors bound
};

// `head_names`: parameters that may be absent (the caller initialises a new head for them).
// `prefix`: "bert." or "roberta.", tried stripped for checkpoints saved from a bare encoder.
// `indices`: integer tensors of shape [values->size()] (I32, or I64 within int32), every value
// in [lo, hi).
BindResult bind_params(const ParamList& params, const std::map<std::string, Tensor>& tensors,
                       const std::filesystem::path& path, const std::string& prefix,
                       const std::vector<std::string>& head_names, const std::vector<IndexParam>& indices = {});

}  // namespace moekit::io
