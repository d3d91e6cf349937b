#include "io/hf_model.h"

#include <nlohmann/json.hpp>

#include "io/tokenizer_models.h"
#include "io/utf8.h"
#include "model/error.h"

namespace moekit::io {

Vocabulary make_vocabulary(std::unordered_map<std::string, int32_t> ids, const std::filesystem::path& file,
                           const std::string& what) {
  Vocabulary v;
  for (const auto& [token, id] : ids) {
    if (id < 0 || static_cast<size_t>(id) >= kMaxTokenizerVocab)
      fail(file, what + ": id " + std::to_string(id) + " of \"" + token + "\" is outside 0.." +
                     std::to_string(kMaxTokenizerVocab - 1));
    if (invalid_utf8_at(token) >= 0) fail(file, what + ": a token is not valid UTF-8");
    v.limit = std::max<int64_t>(v.limit, int64_t{id} + 1);
  }
  v.ids = std::move(ids);
  return v;
}

Vocabulary parse_vocab_object(const hf_json::Fields& f) {
  const auto& vocab = f.need("vocab");
  if (!vocab.is_object()) f.fail_with(std::string("\"vocab\": expected an object, got ") + vocab.type_name());
  if (vocab.size() > kMaxTokenizerVocab)
    f.fail_with("vocab of " + std::to_string(vocab.size()) + " entries is larger than moekit allows (" +
                std::to_string(kMaxTokenizerVocab) + ")");
  std::unordered_map<std::string, int32_t> ids;
  ids.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer()) f.fail_with("vocab \"" + token + "\": expected an integer id");
    const int64_t v = id.get<int64_t>();
    if (v < 0 || v >= static_cast<int64_t>(kMaxTokenizerVocab))
      f.fail_with("vocab \"" + token + "\": id " + std::to_string(v) + " out of range");
    ids.emplace(token, static_cast<int32_t>(v));
  }
  return make_vocabulary(std::move(ids), f.file, f.what);
}

std::unique_ptr<TokenModel> parse_model(const nlohmann::json& j, const std::filesystem::path& file) {
  if (!j.is_object()) fail(file, std::string("model: expected an object, got ") + j.type_name());
  std::string type;
  if (auto it = j.find("type"); it != j.end() && it->is_string()) {
    type = it->get<std::string>();
  } else if (j.contains("merges")) {  // files older than the "type" tag: the fields tell the model
    type = "BPE";
  } else if (j.contains("vocab") && j.at("vocab").is_array()) {
    type = "Unigram";
  } else if (j.contains("continuing_subword_prefix") || j.contains("max_input_chars_per_word")) {
    type = "WordPiece";
  }
  if (type == "WordPiece") return parse_wordpiece(j, file);
  if (type == "BPE") return parse_bpe(j, file);
  if (type == "Unigram") return parse_unigram(j, file);
  fail(file, "unsupported model \"" + type + "\"");
}

}  // namespace moekit::io
