// Which tokenizer a model directory ships, by transformers' AutoTokenizer rule: the fast
// tokenizer's tokenizer.json first, then the slow tokenizer's own files.
#include <stdlib.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "io/hf_json.h"
#include "io/hf_tokenizer.h"
#include "io/tokenizer.h"
#include "io/wordpiece.h"
#include "model/error.h"

namespace moekit::io {

namespace fs = std::filesystem;

namespace {

constexpr uintmax_t kMaxTokenizerConfigBytes = 16 << 20;

bool has(const fs::path& dir, const char* name) {
  std::error_code ec;
  return fs::is_regular_file(dir / name, ec);
}

// tokenizer_config.json "add_prefix_space" (RobertaTokenizer's default: false).
bool read_add_prefix_space(const fs::path& dir) {
  const fs::path file = dir / "tokenizer_config.json";
  if (!has(dir, "tokenizer_config.json")) return false;
  const nlohmann::json j = hf_json::read_json_file(file, kMaxTokenizerConfigBytes);
  if (!j.is_object() || !j.contains("add_prefix_space") || j.at("add_prefix_space").is_null()) return false;
  check(j.at("add_prefix_space").is_boolean(), file, "\"add_prefix_space\": expected a boolean");
  return j.at("add_prefix_space").get<bool>();
}

// The fast or slow-BPE tokenizer of dir; nullptr when dir has neither.
std::unique_ptr<Tokenizer> load_hf(const fs::path& dir) {
  if (has(dir, "tokenizer.json")) return HfTokenizer::from_json_file(dir / "tokenizer.json");
  if (has(dir, "vocab.json") && has(dir, "merges.txt"))
    return HfTokenizer::from_vocab_merges(dir / "vocab.json", dir / "merges.txt", read_add_prefix_space(dir));
  return nullptr;
}

[[noreturn]] void no_tokenizer(const fs::path& dir) {
  const bool spm = has(dir, "sentencepiece.bpe.model") || has(dir, "spiece.model");
  fail(dir, std::string("no tokenizer: expected tokenizer.json, vocab.json + merges.txt, or vocab.txt") +
                (spm ? " (hint: this model's SentencePiece file needs its tokenizer.json; transformers' "
                       "AutoTokenizer.save_pretrained writes one)"
                     : ""));
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& dir) {
  if (auto t = load_hf(dir)) return t;
  if (has(dir, "vocab.txt")) return std::make_unique<WordPieceTokenizer>(Vocab::load(dir / "vocab.txt"), read_do_lower_case(dir));
  no_tokenizer(dir);
}

// An exported file's embedded tokenizer files, written to a private scratch directory for the
// parsers (which read files), removed again. Errors name the export and the embedded file.
std::unique_ptr<Tokenizer> load_embedded(const LoadedModel& loaded) {
  std::error_code ec;
  std::string pattern = (fs::temp_directory_path(ec) / "moekit-tokenizer-XXXXXX").string();
  const char* dir = mkdtemp(pattern.data());
  if (!dir) fail(loaded.path, "cannot make a scratch directory for its embedded tokenizer");
  const fs::path scratch(dir);
  struct Remove {
    fs::path p;
    ~Remove() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } remove{scratch};
  for (const auto& [name, text] : loaded.embedded_tokenizer) {
    if (!is_tokenizer_file_name(name)) fail(loaded.path, "embeds an unknown tokenizer file \"" + name + "\"");
    std::ofstream(scratch / name, std::ios::binary) << text;
  }
  try {
    return load_hf(scratch);
  } catch (const Error& e) {
    std::string what = e.what();
    if (const auto at = what.find(scratch.string()); at != std::string::npos)
      what.replace(at, scratch.string().size() + 1, "");  // name the embedded file, not the scratch copy
    fail(loaded.path, "embedded tokenizer: " + what);
  }
}

std::unique_ptr<Tokenizer> load_tokenizer(const LoadedModel& loaded) {
  std::unique_ptr<Tokenizer> t;
  std::error_code ec;
  if (fs::is_directory(loaded.path, ec)) t = load_hf(loaded.path);
  else if (!loaded.embedded_tokenizer.empty()) t = load_embedded(loaded);
  if (!t) {
    if (!loaded.vocab) {
      if (fs::is_directory(loaded.path, ec)) no_tokenizer(loaded.path);
      fail(loaded.path, "has no vocabulary: text input needs the model's tokenizer");
    }
    t = std::make_unique<WordPieceTokenizer>(*loaded.vocab, loaded.do_lower_case);
  }
  if (loaded.model && t->id_limit() > loaded.model->config.vocab_size)
    fail(loaded.path, "the tokenizer (" + t->describe() + ") has ids up to " + std::to_string(t->id_limit() - 1) +
                          ", but config.json vocab_size is " + std::to_string(loaded.model->config.vocab_size));
  return t;
}

constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                                           "special_tokens_map.json"};

std::vector<fs::path> tokenizer_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const char* name : kTokenizerFiles)
    if (has(dir, name)) out.push_back(dir / name);
  return out;
}

bool is_tokenizer_file_name(const std::string& name) {
  for (const char* known : kTokenizerFiles)
    if (name == known) return true;
  return false;
}

std::map<std::string, std::string> tokenizer_file_contents(const LoadedModel& loaded) {
  std::map<std::string, std::string> out = loaded.embedded_tokenizer;
  for (const fs::path& file : loaded.tokenizer_files)
    out[file.filename().string()] = hf_json::read_text_file(file, HfTokenizer::kMaxTokenizerJsonBytes);
  return out;
}

}  // namespace moekit::io
