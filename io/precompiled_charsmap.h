// The Precompiled normalizer of SentencePiece models (XLM-R, ALBERT, T5): its charsmap is
// SentencePiece's normalization rule table compiled into a darts-clone double-array trie.
// Layout (little-endian): u32 trie_bytes, trie_bytes/4 u32 units, then the replacement strings,
// each ended by '\0'. A trie key is the UTF-8 of a character (or grapheme) that changes; its value
// is the byte offset of the replacement. Applied grapheme by grapheme as Hugging Face tokenizers
// does (normalizers/precompiled.rs with the spm_precompiled crate).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/aligned_text.h"

namespace moekit::io {

class PrecompiledCharsmap {
 public:
  // Throws Error naming `file` when the blob is too short or its trie size is out of range.
  PrecompiledCharsmap(const std::string& blob, const std::filesystem::path& file);

  // The replacement of the shortest trie key that prefixes `chunk` (spm_precompiled's transform:
  // the first common-prefix result), or nullopt.
  std::optional<std::string_view> transform(std::string_view chunk) const;
  // A grapheme shorter than 6 bytes is looked up whole, else (or when absent) each character.
  // Replacements pair their characters with the replaced ones in order (precompiled.rs replace).
  void normalize(AlignedText& t) const;
  std::string normalize(const std::string& s) const;

 private:
  std::vector<uint32_t> units_;
  std::string normalized_;
  std::filesystem::path file_;
};

// RFC 4648 base64 (with padding, as serde writes it); throws Error naming `file` on bad input.
std::string decode_base64(const std::string& s, const std::filesystem::path& file, const std::string& what);

}  // namespace moekit::io
