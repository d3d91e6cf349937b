#include "compress/export.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "compress/onnx_export.h"
#include "compress/quantize.h"
#include "io/compact.h"
#include "io/checkpoint.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/error.h"

namespace moekit::compress {

namespace fs = std::filesystem;

namespace {

bool is_matrix(const io::Tensor& t) { return t.shape.size() == 2 && io::is_float(t.dtype); }

io::DType float_dtype(const std::string& dtype) {
  if (dtype == "fp16") return io::DType::F16;
  if (dtype == "bf16") return io::DType::BF16;
  return io::DType::F32;
}

}  // namespace

ExportSummary export_model(BertModel& model, const io::Vocab* vocab, bool do_lower_case, const ExportOptions& o,
                           const std::map<std::string, std::string>& tokenizer_files) {
  if (o.format == "onnx") return export_onnx(model, o);
  if (o.format != "hdf5" && o.format != "safetensors")
    fail("", "--format must be hdf5, safetensors or onnx, got " + o.format);
  if (o.dtype != "fp32" && o.dtype != "fp16" && o.dtype != "bf16" && o.dtype != "int8")
    fail("", "--dtype must be fp32, fp16, bf16 or int8, got " + o.dtype);
  if (o.format == "safetensors" && o.dtype == "int8")
    fail("", "--dtype int8 needs --format hdf5 (safetensors has no per-row scale convention)");
  ExportSummary summary;
  std::map<std::string, io::Tensor> tensors = io::model_tensors(model);
  if (o.prune) {
    // Provenance only: which dense neuron each expert row came from. Inference never reads it.
    for (auto it = tensors.begin(); it != tensors.end();) {
      if (it->first.size() > 13 && it->first.compare(it->first.size() - 13, 13, ".neuron_index") == 0) {
        it = tensors.erase(it);
        ++summary.pruned_tensors;
      } else {
        ++it;
      }
    }
  }
  const std::string config = io::hf_config_json(model.config).dump();
  std::map<std::string, io::Tensor> scales;
  for (auto& [name, t] : tensors) {
    if (!io::is_float(t.dtype)) continue;
    if (o.dtype == "int8" && is_matrix(t)) {
      const QuantizedMatrix q = quantize_int8_rows(io::tensor_to_mat(t, name), name);
      t = to_tensor(q);
      scales[name] = scale_tensor(q);
    } else if (o.dtype != "int8") {
      const bool vector = t.shape.size() == 1;
      t = io::mat_to_tensor(io::tensor_to_mat(t, name), float_dtype(o.dtype), vector);
    }
  }
  const fs::path out = o.out;
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  if (o.format == "hdf5") {
    io::CompactModel cm;
    cm.config_json = config;
    if (vocab) cm.vocab = vocab->tokens;
    cm.tokenizer_files = tokenizer_files;
    cm.do_lower_case = do_lower_case;
    cm.tensors = std::move(tensors);
    cm.scales = std::move(scales);
    summary.tensors = cm.tensors.size();
    io::write_compact(out, cm);
  } else {
    std::map<std::string, std::string> meta = {{"format", "pt"}, {"moekit_config", config},
                                               {"do_lower_case", do_lower_case ? "true" : "false"}};
    if (vocab) {
      std::string joined;
      for (const auto& tok : vocab->tokens) joined += tok + "\n";
      meta["moekit_vocab"] = joined;
    }
    if (!tokenizer_files.empty()) meta["moekit_tokenizer_files"] = nlohmann::json(tokenizer_files).dump();
    summary.tensors = tensors.size();
    io::write_safetensors(out, tensors, meta);
  }
  summary.bytes = fs::file_size(out);
  return summary;
}

}  // namespace moekit::compress
