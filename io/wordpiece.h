// BERT's tokenizer: BasicTokenizer + WordpieceTokenizer exactly as Hugging Face's slow
// BertTokenizer (transformers/models/bert/tokenization_bert.py), which follows google-research/bert
// tokenization.py plus: special tokens split out of the text first, NFC before whitespace
// splitting, and per-character lower-casing (so no Greek final-sigma rule).
// Unicode tables come from utf8proc, so characters new since Python's unicodedata may differ.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/aligned_text.h"
#include "io/tokenizer.h"
#include "io/vocab.h"

namespace moekit::io {

class WordPieceTokenizer : public Tokenizer {
 public:
  // Throws Error (naming vocab.path) when [CLS], [SEP] or [UNK] is missing.
  WordPieceTokenizer(Vocab vocab, bool do_lower_case);

  // UTF-8 text -> word pieces. Invalid UTF-8 throws Error.
  std::vector<std::string> tokenize(const std::string& text) const;
  // The same, with each piece's byte range in text (as BertTokenizerFast's offsets: a piece of a
  // normalised word maps back to the characters it came from; [UNK] spans its whole word).
  void tokenize(const std::string& text, std::vector<std::string>& pieces,
                std::vector<std::pair<size_t, size_t>>& offsets) const;
  // Tokens absent from the vocabulary map to the id of [UNK].
  std::vector<int32_t> to_ids(const std::vector<std::string>& tokens) const;

  using Encoded = Encoding;
  // [CLS] A [SEP] (B [SEP]); type ids 0 for the first part, 1 for B [SEP]. Truncates with HF's
  // slow "longest_first" (one token at a time, from the pair on ties) so that ids.size() <=
  // max_len; max_len must leave room for the special tokens.
  Encoding encode(const std::string& text, const std::string* text_pair, int max_len) const override;
  Encoding encode_plain(const std::string& text) const override;
  std::string describe() const override { return "wordpiece (vocab.txt)"; }
  int64_t id_limit() const override { return static_cast<int64_t>(vocab_.size()); }
  int32_t token_id(const std::string& token) const override { return vocab_.id(token); }

  const Vocab& vocab() const { return vocab_; }
  bool do_lower_case() const { return do_lower_case_; }

  static constexpr int kMaxCharsPerWord = 100;  // longer words become [UNK] (HF default)

 private:
  // segment = text[base, base + size): its words, aligned to text.
  std::vector<AlignedText> basic_tokenize(const std::string& segment, size_t base) const;
  void wordpiece(const AlignedText& word, std::vector<std::string>& out, std::vector<std::pair<size_t, size_t>>& offsets) const;

  Vocab vocab_;
  bool do_lower_case_;
  int32_t cls_id_, sep_id_, unk_id_;
};

// tokenizer_config.json's "do_lower_case" in model_dir; true when the file or key is absent
// (HF's default). Malformed JSON or a non-boolean value throws Error naming the file.
bool read_do_lower_case(const std::filesystem::path& model_dir);

}  // namespace moekit::io
