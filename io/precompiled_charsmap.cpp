#include "io/precompiled_charsmap.h"

#include "io/unicode_text.h"
#include "model/error.h"

namespace moekit::io {

namespace {

// darts-clone's unit fields.
bool has_leaf(uint32_t u) { return (u >> 8) & 1; }
uint32_t value(uint32_t u) { return u & ((1u << 31) - 1); }
uint32_t label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
uint32_t offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

}  // namespace

std::string decode_base64(const std::string& s, const std::filesystem::path& file, const std::string& what) {
  auto sextet = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  size_t n = s.size();
  while (n > 0 && s[n - 1] == '=') --n;
  if (s.size() % 4 != 0 || s.size() - n > 2) fail(file, what + ": invalid base64 (length " + std::to_string(s.size()) + ")");
  std::string out;
  out.reserve(n * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const int v = sextet(s[i]);
    if (v < 0) fail(file, what + ": invalid base64 character at " + std::to_string(i));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

PrecompiledCharsmap::PrecompiledCharsmap(const std::string& blob, const std::filesystem::path& file) : file_(file) {
  if (blob.size() < 4) fail(file, "Precompiled: charsmap of " + std::to_string(blob.size()) + " bytes is too short");
  const auto* b = reinterpret_cast<const unsigned char*>(blob.data());
  const uint64_t trie_bytes = b[0] | (b[1] << 8) | (b[2] << 16) | (uint64_t{b[3]} << 24);
  if (trie_bytes % 4 != 0 || trie_bytes == 0 || trie_bytes > blob.size() - 4)
    fail(file, "Precompiled: trie size " + std::to_string(trie_bytes) + " does not fit the charsmap of " +
                   std::to_string(blob.size()) + " bytes");
  units_.resize(trie_bytes / 4);
  for (size_t i = 0; i < units_.size(); ++i) {
    const unsigned char* p = b + 4 + 4 * i;
    units_[i] = p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t{p[3]} << 24);
  }
  normalized_ = blob.substr(4 + trie_bytes);
}

std::optional<std::string_view> PrecompiledCharsmap::transform(std::string_view chunk) const {
  // darts-clone commonPrefixSearch, stopping at the first result (all spm_precompiled uses).
  size_t pos = offset(units_[0]);
  for (unsigned char c : chunk) {
    if (c == 0) break;
    pos ^= c;
    if (pos >= units_.size()) return std::nullopt;
    const uint32_t unit = units_[pos];
    if (label(unit) != c) return std::nullopt;
    pos ^= offset(unit);
    if (pos >= units_.size()) return std::nullopt;
    if (has_leaf(unit)) {
      const size_t at = value(units_[pos]);
      if (at >= normalized_.size()) fail(file_, "Precompiled: replacement offset " + std::to_string(at) + " is outside the charsmap");
      const size_t end = normalized_.find('\0', at);
      return std::string_view(normalized_).substr(at, (end == std::string::npos ? normalized_.size() : end) - at);
    }
  }
  return std::nullopt;
}

void PrecompiledCharsmap::normalize(AlignedText& t) const {
  AlignedBuilder out(t);
  const std::string_view all(t.text);
  for (const auto& [begin, end] : text::graphemes(t.text)) {
    const std::string_view g = all.substr(begin, end - begin);
    if (g.size() < 6) {
      if (auto r = transform(g)) {
        out.replace(begin, end, *r);
        continue;
      }
    }
    for (size_t i = 0; i < g.size();) {
      const size_t len = static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(g[i])));
      if (auto r = transform(g.substr(i, len))) out.replace(begin + i, begin + i + len, *r);
      else out.keep(begin + i, begin + i + len);
      i += len;
    }
  }
  t = out.finish();
}

std::string PrecompiledCharsmap::normalize(const std::string& s) const {
  AlignedText t = AlignedText::original(s);
  normalize(t);
  return std::move(t.text);
}

}  // namespace moekit::io
