#include "io/exported_model.h"

#include <sstream>

#include <nlohmann/json.hpp>

#include "io/compact.h"
#include "io/h5_checksum.h"
#include "io/safetensors.h"
#include "model/error.h"

namespace moekit::io {

namespace fs = std::filesystem;

bool is_exported_model_file(const fs::path& path) {
  return fs::is_regular_file(path) && (path.extension() == ".safetensors" || is_compact_file(path));
}

Tensor dequantize_tensor(const Tensor& q, const Tensor& scale, const std::string& name, const fs::path& path) {
  try {
    return mat_to_tensor(dequantize(tensor_to_quantized(q, scale, name)), DType::F32, false);
  } catch (const Error& e) {
    fail(path, e.what());
  }
}

ExportedModel read_exported_model(const fs::path& path, Int8Tensors int8) {
  ExportedModel out;
  if (path.extension() == ".safetensors") {
    SafetensorsFile f = read_safetensors(path);
    auto cfg = f.metadata.find("moekit_config");
    if (cfg == f.metadata.end())
      fail(path, "has no moekit_config in its __metadata__ (a Hugging Face checkpoint is loaded as a directory "
                 "with config.json)");
    out.config_json = cfg->second;
    if (auto v = f.metadata.find("moekit_vocab"); v != f.metadata.end()) {
      std::vector<std::string> tokens;
      std::stringstream ss(v->second);
      for (std::string line; std::getline(ss, line);) tokens.push_back(line);
      out.vocab = Vocab::from_tokens(tokens);
    }
    if (auto l = f.metadata.find("do_lower_case"); l != f.metadata.end()) out.do_lower_case = l->second != "false";
    if (auto t = f.metadata.find("moekit_tokenizer_files"); t != f.metadata.end()) {
      const auto j = nlohmann::json::parse(t->second, nullptr, false);
      if (!j.is_object()) fail(path, "moekit_tokenizer_files in __metadata__ is not a JSON object");
      for (const auto& [name, text] : j.items()) {
        if (!text.is_string()) fail(path, "moekit_tokenizer_files: \"" + name + "\" is not a string");
        out.tokenizer_files[name] = text.get<std::string>();
      }
    }
    for (auto& [name, t] : f.tensors) {
      ++out.stored_dtypes[dtype_name(t.dtype)];
      out.tensors[name] = std::move(t);
    }
    return out;
  }
  CompactModel cm = read_compact(path);
  if (!cm.verified) out.warnings.push_back(unverified_warning(path));
  out.config_json = cm.config_json;
  out.do_lower_case = cm.do_lower_case;
  out.tokenizer_files = std::move(cm.tokenizer_files);
  if (!cm.vocab.empty()) out.vocab = Vocab::from_tokens(cm.vocab);
  for (auto& [name, t] : cm.tensors) {
    ++out.stored_dtypes[dtype_name(t.dtype)];
    if (t.dtype == DType::I8) {
      auto s = cm.scales.find(name);
      if (s == cm.scales.end()) fail(path, name + ": int8 tensor without a scale");
      if (int8 == Int8Tensors::keep) {
        out.scales[name] = s->second;
        out.tensors[name] = std::move(t);
      } else {
        out.tensors[name] = dequantize_tensor(t, s->second, name, path);
      }
    } else {
      out.tensors[name] = std::move(t);
    }
  }
  for (const auto& [alias, target] : cm.aliases) {
    out.tensors[alias] = out.tensors.at(target);
    if (auto s = out.scales.find(target); s != out.scales.end()) out.scales[alias] = s->second;
  }
  return out;
}

}  // namespace moekit::io
