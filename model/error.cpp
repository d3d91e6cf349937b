#include "model/error.h"

namespace moekit {

static std::string join(const std::filesystem::path& path, const std::string& what) {
  return path.empty() ? what : path.string() + ": " + what;
}

Error::Error(const std::filesystem::path& path, const std::string& what)
    : std::runtime_error(join(path, what)), path_(path) {}

namespace {

// Length of the valid UTF-8 sequence at s[i] and its code point, or 0 when invalid (overlong
// forms, surrogates and code points past U+10FFFF are invalid, as in RFC 3629).
size_t utf8_sequence(std::string_view s, size_t i, char32_t& cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t n;
  char32_t min;
  if (c < 0x80) { cp = c; return 1; }
  if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
  else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
  else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool unsafe_code_point(char32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||  // C0, DEL, C1 (ESC, CSI, ...)
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);  // bidi overrides
}

}  // namespace

std::string escape_for_terminal(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    size_t n = utf8_sequence(text, i, cp);
    const bool escape = n == 0 || unsafe_code_point(cp);
    if (n == 0) n = 1;  // an invalid byte is shown alone; the next byte starts afresh
    if (escape) {
      for (size_t k = 0; k < n; ++k) {
        const auto c = static_cast<unsigned char>(text[i + k]);
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

void fail(const std::filesystem::path& path, const std::string& msg) { throw Error(path, msg); }

}  // namespace moekit
