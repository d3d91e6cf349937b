// tokenizer.json "normalizer": BertNormalizer, NFC/NFD/NFKC/NFKD, Lowercase, StripAccents,
// Replace, Prepend, Strip, Precompiled and Sequence of them, as Hugging Face tokenizers applies
// them, alignments included (each output byte keeps the original range it came from, so token
// offsets point into the text before normalisation).
#pragma once
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "io/aligned_text.h"

namespace moekit::io {

// Valid UTF-8 in, valid UTF-8 out.
struct Normalizer {
  std::function<void(AlignedText&)> apply;
  void operator()(AlignedText& t) const { apply(t); }
  std::string operator()(const std::string& s) const;  // the text alone
};

// Throws Error naming `file` and the component for an unknown type or a bad field.
Normalizer parse_normalizer(const nlohmann::json& j, const std::filesystem::path& file);

// BertNormalizer's steps; strip_accents defaults to lowercase (HF's `null`).
void bert_normalize(AlignedText& t, bool clean_text, bool handle_chinese_chars, bool strip_accents, bool lowercase);
std::string bert_normalize(const std::string& s, bool clean_text, bool handle_chinese_chars, bool strip_accents,
                           bool lowercase);

}  // namespace moekit::io
