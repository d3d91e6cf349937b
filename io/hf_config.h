// Hugging Face config.json <-> BertConfig. Unknown model types are refused; fields moekit does not
// use are ignored on read; wrong types and impossible values are errors naming the file and key.
#pragma once
#include <filesystem>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace moekit::io {

BertConfig read_hf_config(const std::filesystem::path& config_json);
// Parses an already-loaded JSON object; `path` names the source in errors.
BertConfig parse_hf_config(const nlohmann::json& j, const std::filesystem::path& path);
// The HF fields of `config` (architectures, id2label/label2id included).
nlohmann::json hf_config_json(const BertConfig& config);

}  // namespace moekit::io
