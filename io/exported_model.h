// Reading a model exported as one file (`moekit export`): the compact HDF5 file or a
// .safetensors file whose __metadata__ carries moekit_config (and moekit_vocab). Tensors come
// back as float (int8 dequantised with their per-row scales) ready for binding.
#pragma once
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "io/dtype.h"
#include "io/vocab.h"

namespace moekit::io {

struct ExportedModel {
  std::string config_json;
  std::map<std::string, Tensor> tensors;  // float tensors as F32; index tensors unchanged
  std::optional<Vocab> vocab;
  bool do_lower_case = true;
  std::map<std::string, int> stored_dtypes;  // dtype in the file -> tensors
};

bool is_exported_model_file(const std::filesystem::path& path);
ExportedModel read_exported_model(const std::filesystem::path& path);

}  // namespace moekit::io
