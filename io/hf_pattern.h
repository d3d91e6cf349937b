// The "pattern" of tokenizer.json's Split pre-tokenizer and Replace normalizer:
// {"String": s} (literal) or {"Regex": r}. Regexes in Hugging Face tokenizers are Oniguruma with
// Unicode classes; moekit runs two kinds exactly and refuses the rest with an Error:
//   - GPT-2's byte-level pattern (and its form without the contractions), matched by hand;
//   - plain ASCII regexes whose meaning cannot depend on Unicode classes (no `.`, `\w`, `\s`,
//     `\d`, `\b`, `\p`, negated classes or escapes of non-ASCII), run with std::regex on the bytes.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moekit::io {

// Non-overlapping, non-empty matches, left to right, as byte ranges [begin, end).
using Matches = std::vector<std::pair<size_t, size_t>>;
using Pattern = std::function<Matches(const std::string&)>;

Pattern parse_pattern(const nlohmann::json& j, const std::filesystem::path& file, const std::string& component);

// GPT-2's pre-tokenization regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (the ByteLevel pre-tokenizer's), every character covered by one match.
Matches gpt2_matches(const std::string& s);
extern const char* const kGpt2Pattern;

}  // namespace moekit::io
