// Reading a model exported as one file (`moekit export`): the compact HDF5 file or a
// .safetensors file whose __metadata__ carries moekit_config (and moekit_vocab). Float tensors
// come back as stored; int8 tensors either dequantised with their per-row scales (ready for
// binding as float) or kept as int8 with their scales, for inference on int8 kernels.
#pragma once
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "io/dtype.h"
#include "io/vocab.h"

namespace moekit::io {

enum class Int8Tensors { dequantise, keep };

struct ExportedModel {
  std::string config_json;
  // dequantise: int8 tensors as F32; keep: as I8, with their F32 [rows] scales in `scales`.
  // Other tensors as stored (float or index).
  std::map<std::string, Tensor> tensors;
  std::map<std::string, Tensor> scales;  // keyed by tensor name (aliases included)
  std::optional<Vocab> vocab;
  std::map<std::string, std::string> tokenizer_files;  // embedded tokenizer files: name -> contents
  bool do_lower_case = true;
  std::map<std::string, int> stored_dtypes;  // dtype in the file -> tensors
  std::vector<std::string> warnings;         // e.g. an HDF5 file without a checksum
};

bool is_exported_model_file(const std::filesystem::path& path);
ExportedModel read_exported_model(const std::filesystem::path& path, Int8Tensors int8 = Int8Tensors::dequantise);

// w[r, c] = scale[r] * q[r, c] as an F32 tensor; errors name `name` and `path`.
Tensor dequantize_tensor(const Tensor& q, const Tensor& scale, const std::string& name,
                         const std::filesystem::path& path);

}  // namespace moekit::io
