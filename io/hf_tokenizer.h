// A Hugging Face tokenizers pipeline: added tokens split out, normalizer, pre-tokenizer, model,
// truncation and post-processor, as tokenizers' Tokenizer::encode runs them. Built from a
// tokenizer.json (every component checked: an unknown type is an Error naming the file and the
// component) or from RoBERTa's vocab.json + merges.txt. Padding is moekit's own (batching.h), so a
// file's "padding" has no effect; the "decoder" is checked but not needed (moekit never decodes).
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/hf_model.h"
#include "io/hf_normalizer.h"
#include "io/hf_post_processor.h"
#include "io/hf_pre_tokenizer.h"
#include "io/tokenizer.h"

namespace moekit::io {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

enum class TruncationStrategy { longest_first, only_first, only_second };

class HfTokenizer : public Tokenizer {
 public:
  HfTokenizer(std::unique_ptr<TokenModel> model, std::optional<Normalizer> normalizer,
              std::optional<PreTokenizer> pre_tokenizer, PostProcessor post, std::vector<AddedToken> added,
              std::string source);

  // tokenizer.json: at most kMaxTokenizerJsonBytes. Throws Error naming the file.
  static std::unique_ptr<HfTokenizer> from_json_file(const std::filesystem::path& tokenizer_json);
  // RoBERTa's slow files, as transformers' RobertaTokenizerFast converts them: byte-level BPE,
  // ByteLevel(add_prefix_space) pre-tokenizer, <s> A </s></s> B </s>, the special tokens of
  // special_tokens_map.json / tokenizer_config.json (defaults <s> </s> <unk> <pad> <mask>).
  static std::unique_ptr<HfTokenizer> from_vocab_merges(const std::filesystem::path& vocab_json,
                                                        const std::filesystem::path& merges_txt,
                                                        bool add_prefix_space);

  Encoding encode(const std::string& text, const std::string* text_pair, int max_len) const override;
  Encoding encode_plain(const std::string& text) const override;
  std::string describe() const override { return model_->kind() + " (" + source_ + ")"; }
  int64_t id_limit() const override;
  int32_t token_id(const std::string& token) const override;

  TruncationStrategy truncation = TruncationStrategy::longest_first;
  bool truncate_left = false;

  static constexpr uintmax_t kMaxTokenizerJsonBytes = uintmax_t{256} << 20;

 private:
  Encoding encode_sequence(const std::string& text, int32_t type_id) const;
  std::vector<Token> tokens_of(const std::string& text) const;

  std::unique_ptr<TokenModel> model_;
  std::optional<Normalizer> normalizer_;
  std::optional<PreTokenizer> pre_tokenizer_;
  PostProcessor post_;
  std::vector<AddedToken> added_;  // longest content first, so the first match is leftmost-longest
  std::string source_;
};

}  // namespace moekit::io
