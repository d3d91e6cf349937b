// tokenizer.json "normalizer": BertNormalizer, NFC/NFD/NFKC/NFKD, Lowercase, StripAccents,
// Replace, Prepend, Strip, Precompiled and Sequence of them, as Hugging Face tokenizers applies
// them (offsets are not tracked: moekit needs ids, not alignments).
#pragma once
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace moekit::io {

// Valid UTF-8 in, valid UTF-8 out.
using Normalizer = std::function<std::string(const std::string&)>;

// Throws Error naming `file` and the component for an unknown type or a bad field.
Normalizer parse_normalizer(const nlohmann::json& j, const std::filesystem::path& file);

// BertNormalizer's steps; strip_accents defaults to lowercase (HF's `null`).
std::string bert_normalize(const std::string& s, bool clean_text, bool handle_chinese_chars, bool strip_accents,
                           bool lowercase);

}  // namespace moekit::io
