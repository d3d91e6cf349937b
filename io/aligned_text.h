// Text that remembers where each of its bytes came from in the original input, as Hugging Face
// tokenizers' NormalizedString does, so that tokens of normalised text map back to character
// offsets of what the user sent (TEI's /tokenize start/stop). Rewrites pair output characters with
// source characters in order (tokenizers' transform with its `changes`): a character expanded into
// several (NFKD, lower case) maps every part to its source, removed characters vanish.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/unicode_text.h"

namespace moekit::io {

struct Span {
  uint32_t begin = 0, end = 0;  // byte range [begin, end) of the original text
};

struct AlignedText {
  std::string text;
  std::vector<Span> align;  // one per byte of text

  // Each byte of s maps to its own character's range, shifted by base (s's place in the input).
  static AlignedText original(const std::string& s, size_t base = 0);
  AlignedText slice(size_t begin, size_t end) const;
  // The original range of text[begin, end) (first byte's start, last byte's end); {at, at} for an
  // empty range, `at` being the original position just before `begin`.
  Span original_span(size_t begin, size_t end) const;
};

// Builds a rewritten AlignedText from `src`, front to back.
class AlignedBuilder {
 public:
  explicit AlignedBuilder(const AlignedText& src) : src_(src) { out_.text.reserve(src.text.size()); out_.align.reserve(src.text.size()); }
  // src.text[begin, end) unchanged.
  void keep(size_t begin, size_t end);
  // src.text[begin, end) becomes `replacement`: output characters take the ranges of the source
  // characters in order; extra output characters the last source character's; an insertion
  // (begin == end) the character before it.
  void replace(size_t begin, size_t end, std::string_view replacement);
  // `s`, every byte mapped to `span`.
  void put(std::string_view s, Span span) {
    out_.text.append(s);
    out_.align.insert(out_.align.end(), s.size(), span);
  }
  AlignedText finish() { return std::move(out_); }

 private:
  const AlignedText& src_;
  AlignedText out_;
};

// Normalisation forms, lower case and "prepend" with alignments (text equal to text::normalize,
// text::lowercase and plain concatenation).
void aligned_normalize(AlignedText& t, text::Form form);
void aligned_lowercase(AlignedText& t);
// s before t; its characters map to t's first character (tokenizers' NormalizedString::prepend).
void aligned_prepend(AlignedText& t, std::string_view s);

}  // namespace moekit::io
