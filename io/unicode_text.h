// Code-point helpers for the tokenizer.json pipeline: UTF-8 <-> code points, the Unicode classes
// that Hugging Face tokenizers (Rust) tests (char::is_whitespace, \p{L}, \w, ...), normalization
// forms. Tables come from utf8proc, so characters newer than its Unicode version may differ.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moekit::io::text {

using CodePoints = std::vector<int32_t>;

// Throws Error ("invalid UTF-8 in text at byte N") for invalid input.
CodePoints decode(const std::string& s);
void append_utf8(std::string& out, int32_t cp);
std::string encode(const CodePoints& cps);
// Byte length of the UTF-8 sequence starting with lead byte b (1 for anything else).
int utf8_length(unsigned char b);

// Rust char::is_whitespace (the White_Space property).
bool is_whitespace(int32_t cp);
bool is_letter(int32_t cp);       // \p{L}
bool is_number(int32_t cp);       // \p{N}; also Rust char::is_numeric
bool is_word(int32_t cp);         // Rust regex \w: letters, marks, Nd, Nl, Pc, joiners
bool is_punctuation(int32_t cp);  // \p{P}
bool is_ascii_punctuation(int32_t cp);
bool is_other(int32_t cp);        // \p{C}
bool is_nonspacing_mark(int32_t cp);  // Mn
bool is_mark(int32_t cp);             // \p{M}: Mn, Mc, Me

enum class Form { nfc, nfd, nfkc, nfkd };
std::string normalize(const std::string& s, Form form);
// Rust char::to_lowercase per character (full mapping: U+0130 becomes "i\u0307").
std::string lowercase(const std::string& s);
// Extended grapheme clusters (UAX #29), as byte ranges [begin, end) of s.
std::vector<std::pair<size_t, size_t>> graphemes(const std::string& s);

}  // namespace moekit::io::text
