// The one tokenizer interface every command uses (train, eval, predict, importance, pretrain,
// serve, tokenize), whatever the model directory ships: tokenizer.json (WordPiece, BPE or Unigram
// pipelines, io/hf_tokenizer.h), RoBERTa's vocab.json + merges.txt, or BERT's vocab.txt
// (io/wordpiece.h). load_tokenizer picks one by transformers' AutoTokenizer rule.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace moekit::io {

struct Encoding {
  std::vector<int32_t> ids, type_ids;
  std::vector<std::string> tokens;  // the token text of each id, as the reference library reports it
  std::vector<uint8_t> special;     // 1 where a special token was added (post-processor or added token)
  // Byte range [start, stop) of each token in the text it came from, before normalisation (a pair's
  // second text: offsets into that text), as Hugging Face tokenizers' encode gives them; (0, 0)
  // for the special tokens the post-processor adds.
  std::vector<std::pair<size_t, size_t>> offsets;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // text (and the pair) -> ids with the model's special tokens, truncated (the tokenizer's own
  // strategy) so that ids.size() <= max_len. Errors (invalid UTF-8, max_len too small) throw Error.
  virtual Encoding encode(const std::string& text, const std::string* text_pair, int max_len) const = 0;
  // The text's tokens only: no special tokens added, no truncation.
  virtual Encoding encode_plain(const std::string& text) const = 0;
  // "wordpiece (vocab.txt)", "bpe (tokenizer.json)", ... for messages and `inspect`.
  virtual std::string describe() const = 0;
  // Largest id + 1 (to check against the model's embedding table).
  virtual int64_t id_limit() const = 0;
  // Id of a token of the vocabulary or added tokens; -1 when absent.
  virtual int32_t token_id(const std::string& token) const = 0;
};

struct LoadedModel;

// The tokenizer files found in a model directory, by AutoTokenizer's rule: tokenizer.json first
// (the "fast" tokenizer), then the slow tokenizer's files: vocab.json + merges.txt (RoBERTa /
// GPT-2 byte-level BPE), then vocab.txt (BERT WordPiece, do_lower_case from
// tokenizer_config.json). Throws Error naming the directory when none is there.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir);
// For a loaded model: its directory's tokenizer, or the vocabulary embedded in an exported file.
std::unique_ptr<Tokenizer> load_tokenizer(const LoadedModel& loaded);
// The tokenizer files in model_dir that a saved copy of the model needs (tokenizer.json,
// vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json; not vocab.txt, which
// moekit writes itself).
std::vector<std::filesystem::path> tokenizer_files(const std::filesystem::path& model_dir);
// Whether `name` is one of those file names (what an export may embed).
bool is_tokenizer_file_name(const std::string& name);
// The tokenizer files an export of `loaded` embeds (name -> contents): its directory's files, or
// the ones its own exported file embeds. Throws Error naming a file that cannot be read.
std::map<std::string, std::string> tokenizer_file_contents(const LoadedModel& loaded);

}  // namespace moekit::io
