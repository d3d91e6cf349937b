// Internal to the tokenizer.json models (wordpiece_model.cpp, bpe_model.cpp, unigram_model.cpp):
// the shared token -> id table and each model's parser.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "io/hf_json.h"
#include "io/hf_model.h"

namespace moekit::io {

struct Vocabulary {
  std::unordered_map<std::string, int32_t> ids;
  int64_t limit = 0;  // largest id + 1

  int32_t id(const std::string& t) const {
    auto it = ids.find(t);
    return it == ids.end() ? -1 : it->second;
  }
  int64_t id_limit() const { return limit; }
};

// "vocab": {token: id, ...}; ids in [0, kMaxTokenizerVocab).
Vocabulary parse_vocab_object(const hf_json::Fields& f);
Vocabulary make_vocabulary(std::unordered_map<std::string, int32_t> ids, const std::filesystem::path& file,
                           const std::string& what);

std::unique_ptr<TokenModel> parse_wordpiece(const nlohmann::json& j, const std::filesystem::path& file);
std::unique_ptr<TokenModel> parse_bpe(const nlohmann::json& j, const std::filesystem::path& file);
std::unique_ptr<TokenModel> parse_unigram(const nlohmann::json& j, const std::filesystem::path& file);

}  // namespace moekit::io
