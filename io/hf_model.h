// tokenizer.json "model": WordPiece, BPE (with merges; byte-level when paired with the ByteLevel
// pre-tokenizer) and Unigram (Viterbi over the pieces), each as Hugging Face tokenizers runs it on
// one pre-tokenized piece.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moekit::io {

struct Token {
  int32_t id;
  std::string text;
  size_t begin = 0, end = 0;  // byte range in the piece it came from (as the Rust model reports it)
};

// Bounds on what a model may declare, checked before anything is built.
constexpr size_t kMaxTokenizerVocab = 4u << 20;   // the largest real vocabularies hold ~260k entries
constexpr size_t kMaxTokenizerMerges = 4u << 20;

class TokenModel {
 public:
  virtual ~TokenModel() = default;
  // Appends the tokens of one piece (valid UTF-8, not empty), each with its byte range in the
  // piece. Throws Error when the model has no
  // way to express the piece (no unknown token).
  virtual void tokenize(const std::string& piece, std::vector<Token>& out) const = 0;
  virtual int32_t token_to_id(const std::string& token) const = 0;  // -1 when absent
  virtual int64_t id_limit() const = 0;                               // largest id + 1
  virtual std::string kind() const = 0;
};

// Throws Error naming `file` and the field for a bad or unsupported model.
std::unique_ptr<TokenModel> parse_model(const nlohmann::json& j, const std::filesystem::path& file);

// A byte-level BPE from RoBERTa's vocab.json (token -> id) and merges.txt ("a b" lines after an
// optional "#version" line); no unknown token, as transformers' RobertaConverter builds it.
std::unique_ptr<TokenModel> make_bpe(std::unordered_map<std::string, int32_t> vocab,
                                     const std::vector<std::pair<std::string, std::string>>& merges,
                                     const std::filesystem::path& file);

}  // namespace moekit::io
