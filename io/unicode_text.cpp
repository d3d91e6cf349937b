#include "io/unicode_text.h"

#include <cstdlib>
#include <memory>

#include <utf8proc.h>

#include "model/error.h"

namespace moekit::io::text {

CodePoints decode(const std::string& s) {
  CodePoints out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t pos = 0, n = static_cast<utf8proc_ssize_t>(s.size());
  while (pos < n) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t len = utf8proc_iterate(p + pos, n - pos, &cp);
    if (len <= 0) fail("", "invalid UTF-8 in text at byte " + std::to_string(pos));
    out.push_back(cp);
    pos += len;
  }
  return out;
}

void append_utf8(std::string& out, int32_t cp) {
  utf8proc_uint8_t buf[4];
  utf8proc_ssize_t len = utf8proc_encode_char(cp, buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
}

std::string encode(const CodePoints& cps) {
  std::string out;
  out.reserve(cps.size());
  for (int32_t cp : cps) append_utf8(out, cp);
  return out;
}

int utf8_length(unsigned char b) {
  if (b >= 0xF0) return 4;
  if (b >= 0xE0) return 3;
  if (b >= 0xC0) return 2;
  return 1;
}

bool is_whitespace(int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

namespace {
utf8proc_category_t category(int32_t cp) { return utf8proc_category(cp); }
}  // namespace

bool is_letter(int32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      return true;
    default:
      return false;
  }
}

bool is_number(int32_t cp) {
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

bool is_word(int32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return is_letter(cp) || cp == 0x200C || cp == 0x200D;
  }
}

bool is_punctuation(int32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

bool is_ascii_punctuation(int32_t cp) {
  return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
}

bool is_other(int32_t cp) {
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CS ||
         c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CN;
}

bool is_nonspacing_mark(int32_t cp) { return category(cp) == UTF8PROC_CATEGORY_MN; }

bool is_mark(int32_t cp) {
  const auto c = category(cp);
  return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
}

std::string normalize(const std::string& s, Form form) {
  int flags = UTF8PROC_STABLE;
  if (form == Form::nfc || form == Form::nfkc) flags |= UTF8PROC_COMPOSE;
  else flags |= UTF8PROC_DECOMPOSE;
  if (form == Form::nfkc || form == Form::nfkd) flags |= UTF8PROC_COMPAT;
  utf8proc_uint8_t* raw = nullptr;
  utf8proc_ssize_t len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                      static_cast<utf8proc_ssize_t>(s.size()), &raw,
                                      static_cast<utf8proc_option_t>(flags));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(raw, &std::free);
  if (len < 0) fail("", std::string("Unicode normalization failed: ") + utf8proc_errmsg(len));
  return std::string(reinterpret_cast<const char*>(raw), static_cast<size_t>(len));
}

std::string lowercase(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (int32_t cp : decode(s)) {
    if (cp == 0x130) {  // the one character whose full lower case is two (SpecialCasing.txt)
      out += "i\xCC\x87";
      continue;
    }
    append_utf8(out, utf8proc_tolower(cp));
  }
  return out;
}

std::vector<std::pair<size_t, size_t>> graphemes(const std::string& s) {
  std::vector<std::pair<size_t, size_t>> out;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t pos = 0, n = static_cast<utf8proc_ssize_t>(s.size());
  utf8proc_int32_t state = 0, prev = -1;
  size_t start = 0;
  while (pos < n) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t len = utf8proc_iterate(p + pos, n - pos, &cp);
    if (len <= 0) fail("", "invalid UTF-8 in text at byte " + std::to_string(pos));
    if (prev >= 0 && utf8proc_grapheme_break_stateful(prev, cp, &state)) {
      out.emplace_back(start, static_cast<size_t>(pos));
      start = static_cast<size_t>(pos);
    }
    prev = cp;
    pos += len;
  }
  if (n > 0) out.emplace_back(start, static_cast<size_t>(n));
  return out;
}

}  // namespace moekit::io::text
