// Before a model is built from a config read from a file: the sizes the config asks for must be
// the ones its weight file holds. A config that disagrees (corrupt, hostile, or paired with the
// wrong weights) fails naming the field, before the model's tensors are allocated.
#pragma once
#include <filesystem>
#include <map>
#include <string>

#include "io/dtype.h"
#include "model/config.h"

namespace moekit::io {

// Errors read "CONFIG: FIELD = VALUE, but WEIGHTS ..." (embedding shapes, layer count), or name the
// parameter count when the config needs more than the file holds at all.
void check_config_fits_weights(const BertConfig& config, const std::map<std::string, Tensor>& tensors,
                               const std::filesystem::path& config_path, const std::filesystem::path& weights_path);

}  // namespace moekit::io
