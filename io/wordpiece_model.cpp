// WordPiece as models/wordpiece/mod.rs: greedy longest match, "##" continuations, one [UNK] for
// a word with an unmatchable rest or more than max_input_chars_per_word characters.
#include "io/tokenizer_models.h"

#include "io/hf_json.h"
#include "io/unicode_text.h"
#include "model/error.h"

namespace moekit::io {

namespace {

class WordPieceModel : public TokenModel {
 public:
  WordPieceModel(Vocabulary vocab, std::string unk, std::string prefix, int64_t max_chars, const std::filesystem::path& file)
      : vocab_(std::move(vocab)), unk_(std::move(unk)), prefix_(std::move(prefix)), max_chars_(max_chars) {
    unk_id_ = vocab_.id(unk_);
    if (unk_id_ < 0) fail(file, "model WordPiece: unk_token \"" + unk_ + "\" is not in the vocabulary");
  }

  void tokenize(const std::string& word, std::vector<Token>& out) const override {
    std::vector<size_t> offsets;
    for (size_t pos = 0; pos < word.size(); pos += static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(word[pos]))))
      offsets.push_back(pos);
    const size_t n_chars = offsets.size();
    offsets.push_back(word.size());
    if (static_cast<int64_t>(n_chars) > max_chars_) {
      out.push_back({unk_id_, unk_, 0, word.size()});
      return;
    }
    std::vector<Token> pieces;
    size_t start = 0;
    while (start < n_chars) {
      size_t end = n_chars;
      int32_t found = -1;
      std::string piece;
      while (start < end) {
        piece = (start > 0 ? prefix_ : std::string()) + word.substr(offsets[start], offsets[end] - offsets[start]);
        found = vocab_.id(piece);
        if (found >= 0) break;
        --end;
      }
      if (found < 0) {
        out.push_back({unk_id_, unk_, 0, word.size()});
        return;
      }
      pieces.push_back({found, std::move(piece), offsets[start], offsets[end]});
      start = end;
    }
    out.insert(out.end(), std::make_move_iterator(pieces.begin()), std::make_move_iterator(pieces.end()));
  }

  int32_t token_to_id(const std::string& t) const override { return vocab_.id(t); }
  int64_t id_limit() const override { return vocab_.id_limit(); }
  std::string kind() const override { return "wordpiece"; }

 private:
  Vocabulary vocab_;
  std::string unk_, prefix_;
  int64_t max_chars_;
  int32_t unk_id_;
};

}  // namespace

std::unique_ptr<TokenModel> parse_wordpiece(const nlohmann::json& j, const std::filesystem::path& file) {
  const hf_json::Fields f{j, file, "model WordPiece"};
  Vocabulary vocab = parse_vocab_object(f);
  return std::make_unique<WordPieceModel>(std::move(vocab), f.string_or("unk_token", "[UNK]"),
                                          f.string_or("continuing_subword_prefix", "##"),
                                          f.integer_or("max_input_chars_per_word", 100), file);
}

}  // namespace moekit::io
