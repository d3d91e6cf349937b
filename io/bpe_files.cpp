// RoBERTa / GPT-2's slow tokenizer files (vocab.json + merges.txt) as the byte-level BPE pipeline
// transformers' RobertaConverter builds from them.
#include <nlohmann/json.hpp>

#include "io/hf_json.h"
#include "io/hf_tokenizer.h"
#include "io/utf8.h"
#include "model/error.h"

namespace moekit::io {

namespace fs = std::filesystem;

std::unique_ptr<HfTokenizer> HfTokenizer::from_vocab_merges(const fs::path& vocab_json, const fs::path& merges_txt,
                                                            bool add_prefix_space) {
  const nlohmann::json v = hf_json::read_json_file(vocab_json, kMaxTokenizerJsonBytes);
  check(v.is_object(), vocab_json, std::string("expected an object {token: id}, got ") + v.type_name());
  check(v.size() <= kMaxTokenizerVocab, vocab_json, "too many tokens (" + std::to_string(v.size()) + ")");
  std::unordered_map<std::string, int32_t> vocab;
  for (const auto& [token, id] : v.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= static_cast<int64_t>(kMaxTokenizerVocab))
      fail(vocab_json, "\"" + token + "\": expected an id in 0.." + std::to_string(kMaxTokenizerVocab - 1));
    vocab.emplace(token, id.get<int32_t>());
  }

  const std::string data = hf_json::read_text_file(merges_txt, kMaxTokenizerJsonBytes);
  if (long bad = invalid_utf8_at(data); bad >= 0) fail(merges_txt, "invalid UTF-8 at byte " + std::to_string(bad));
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_no = 0;
  for (size_t start = 0; start < data.size();) {
    size_t end = data.find('\n', start);
    if (end == std::string::npos) end = data.size();
    std::string line = data.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if ((line_no == 1 && line.rfind("#version", 0) == 0) || line.empty()) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      fail(merges_txt, "line " + std::to_string(line_no) + ": expected two tokens separated by one space");
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    check(merges.size() <= kMaxTokenizerMerges, merges_txt, "too many merges");
  }

  // The special tokens RobertaTokenizer declares (those in the vocabulary); <mask> takes the space
  // before it (lstrip), as RobertaTokenizer's AddedToken does.
  std::vector<AddedToken> added;
  for (const char* t : {"<s>", "<pad>", "</s>", "<unk>", "<mask>"}) {
    auto it = vocab.find(t);
    if (it == vocab.end()) continue;
    AddedToken a;
    a.id = it->second;
    a.content = t;
    a.special = true;
    a.normalized = false;
    a.lstrip = std::string(t) == "<mask>";
    added.push_back(a);
  }
  auto cls = vocab.find("<s>"), sep = vocab.find("</s>");
  check(cls != vocab.end() && sep != vocab.end(), vocab_json, "no <s> or </s> token (RoBERTa's CLS and SEP)");
  const TemplatePart c{-1, {cls->second}, {"<s>"}, 0}, s{-1, {sep->second}, {"</s>"}, 0};
  const TemplatePart a{0, {}, {}, 0}, b{1, {}, {}, 0};
  PostProcessor post{{c, a, s}, {c, a, s, s, b, s}, true, add_prefix_space};  // RobertaProcessing(trim_offsets=True)

  nlohmann::json byte_level{{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true}};
  return std::make_unique<HfTokenizer>(make_bpe(std::move(vocab), merges, merges_txt), std::nullopt,
                                       parse_pre_tokenizer(byte_level, vocab_json), std::move(post), std::move(added),
                                       "vocab.json + merges.txt");
}

}  // namespace moekit::io
