// tokenizer.json -> HfTokenizer: the file read with a size bound, every top-level key and every
// component type checked.
#include <set>

#include <nlohmann/json.hpp>

#include "io/hf_json.h"
#include "io/hf_tokenizer.h"
#include "model/error.h"

namespace moekit::io {

namespace fs = std::filesystem;

namespace {

// Decoders turn ids back into text, which moekit never does; a known type is accepted unused.
void check_decoder(const nlohmann::json& j, const fs::path& file) {
  static const std::set<std::string> known{"WordPiece", "ByteLevel", "Metaspace", "BPEDecoder", "Replace",
                                           "Fuse",      "Strip",     "ByteFallback", "CTC", "Sequence"};
  const std::string type = hf_json::type_of(j, file, "decoder");
  if (!known.count(type)) fail(file, "unsupported decoder \"" + type + "\"");
  if (type == "Sequence")
    for (const auto& d : hf_json::Fields{j, file, "decoder Sequence"}.array("decoders")) check_decoder(d, file);
}

std::vector<AddedToken> parse_added(const nlohmann::json& list, const fs::path& file) {
  if (!list.is_array()) fail(file, "\"added_tokens\": expected an array");
  if (list.size() > kMaxTokenizerVocab) fail(file, "\"added_tokens\": too many entries");
  std::vector<AddedToken> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const hf_json::Fields f{list[i], file, "added_tokens[" + std::to_string(i) + "]"};
    if (!list[i].is_object()) f.fail_with("expected an object");
    AddedToken t;
    const int64_t id = f.integer_or("id", -1);
    if (id < 0 || id >= static_cast<int64_t>(kMaxTokenizerVocab)) f.fail_with("\"id\" missing or out of range");
    t.id = static_cast<int32_t>(id);
    t.content = f.string("content");
    t.single_word = f.boolean_or("single_word", false);
    t.lstrip = f.boolean_or("lstrip", false);
    t.rstrip = f.boolean_or("rstrip", false);
    t.special = f.boolean_or("special", false);
    t.normalized = f.boolean_or("normalized", !t.special);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

std::unique_ptr<HfTokenizer> HfTokenizer::from_json_file(const fs::path& file) {
  const nlohmann::json j = hf_json::read_json_file(file, kMaxTokenizerJsonBytes);
  check(j.is_object(), file, std::string("expected a JSON object, got ") + j.type_name());
  static const std::set<std::string> keys{"version", "truncation", "padding", "added_tokens", "normalizer",
                                          "pre_tokenizer", "post_processor", "decoder", "model"};
  for (const auto& [key, value] : j.items())
    if (!keys.count(key)) fail(file, "unknown key \"" + key + "\"");
  check(j.contains("model"), file, "missing \"model\"");

  auto present = [&](const char* key) { return j.contains(key) && !j.at(key).is_null(); };
  std::optional<Normalizer> normalizer;
  if (present("normalizer")) normalizer = parse_normalizer(j.at("normalizer"), file);
  std::optional<PreTokenizer> pre;
  if (present("pre_tokenizer")) pre = parse_pre_tokenizer(j.at("pre_tokenizer"), file);
  PostProcessor post = present("post_processor") ? parse_post_processor(j.at("post_processor"), file) : PostProcessor::none();
  if (present("decoder")) check_decoder(j.at("decoder"), file);
  std::vector<AddedToken> added = present("added_tokens") ? parse_added(j.at("added_tokens"), file) : std::vector<AddedToken>{};
  auto model = parse_model(j.at("model"), file);

  auto tok = std::make_unique<HfTokenizer>(std::move(model), std::move(normalizer), std::move(pre), std::move(post),
                                           std::move(added), file.filename().string());
  if (present("truncation")) {
    const hf_json::Fields t{j.at("truncation"), file, "truncation"};
    if (!j.at("truncation").is_object()) t.fail_with("expected an object");
    const std::string strategy = t.string_or("strategy", "LongestFirst");
    if (strategy == "LongestFirst") tok->truncation = TruncationStrategy::longest_first;
    else if (strategy == "OnlyFirst") tok->truncation = TruncationStrategy::only_first;
    else if (strategy == "OnlySecond") tok->truncation = TruncationStrategy::only_second;
    else t.fail_with("unknown strategy \"" + strategy + "\"");
    const std::string direction = t.string_or("direction", "Right");
    if (direction != "Right" && direction != "Left") t.fail_with("unknown direction \"" + direction + "\"");
    tok->truncate_left = direction == "Left";
  }
  if (present("padding") && !j.at("padding").is_object()) fail(file, "\"padding\": expected an object or null");
  return tok;
}

}  // namespace moekit::io
