// tokenizer.json "pre_tokenizer": BertPreTokenizer, ByteLevel, Metaspace, Whitespace,
// WhitespaceSplit, Split, Punctuation, Digits and Sequence, with Hugging Face's split behaviours
// (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous).
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "io/aligned_text.h"
#include "io/hf_pattern.h"

namespace moekit::io {

struct Piece {
  AlignedText text;  // with the original range of every byte
  bool at_start = false;  // begins at offset 0 of the original text (Metaspace "first")
};
using Pieces = std::vector<Piece>;
// Splits (and may rewrite) every piece in place; empty pieces are dropped.
using PreTokenizer = std::function<void(Pieces&)>;

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

// `matches` (sorted, non-overlapping) and the gaps between them cover s; the behaviour decides
// which become pieces (tokenizer/normalizer.rs NormalizedString::split): their byte ranges.
Matches split_ranges(const std::string& s, const Matches& matches, SplitBehavior behavior);
std::vector<std::string> split_by(const std::string& s, const Matches& matches, SplitBehavior behavior);

PreTokenizer parse_pre_tokenizer(const nlohmann::json& j, const std::filesystem::path& file);

// Byte -> printable character of GPT-2's byte-level alphabet (bytes_char in byte_level.rs).
const std::string& byte_level_char(unsigned char b);

}  // namespace moekit::io
