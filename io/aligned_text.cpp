#include "io/aligned_text.h"

#include <utf8proc.h>

namespace moekit::io {

namespace {

size_t char_len(const std::string& s, size_t at) {
  return static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(s[at])));
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

}  // namespace

AlignedText AlignedText::original(const std::string& s, size_t base) {
  AlignedText t{s, std::vector<Span>(s.size())};
  for (size_t i = 0; i < s.size();) {
    const size_t n = std::min(char_len(s, i), s.size() - i);
    const Span sp{static_cast<uint32_t>(base + i), static_cast<uint32_t>(base + i + n)};
    for (size_t k = 0; k < n; ++k) t.align[i + k] = sp;
    i += n;
  }
  return t;
}

AlignedText AlignedText::slice(size_t begin, size_t end) const {
  return {text.substr(begin, end - begin),
          std::vector<Span>(align.begin() + static_cast<std::ptrdiff_t>(begin), align.begin() + static_cast<std::ptrdiff_t>(end))};
}

Span AlignedText::original_span(size_t begin, size_t end) const {
  if (begin < end) return {align[begin].begin, align[end - 1].end};
  const uint32_t at = begin > 0 ? align[begin - 1].end : (align.empty() ? 0 : align[0].begin);
  return {at, at};
}

void AlignedBuilder::keep(size_t begin, size_t end) {
  out_.text.append(src_.text, begin, end - begin);
  out_.align.insert(out_.align.end(), src_.align.begin() + static_cast<std::ptrdiff_t>(begin),
                    src_.align.begin() + static_cast<std::ptrdiff_t>(end));
}

void AlignedBuilder::replace(size_t begin, size_t end, std::string_view replacement) {
  size_t from = begin;  // the next source character to pair with
  Span last = begin > 0 ? src_.align[begin - 1] : Span{};
  for (size_t i = 0; i < replacement.size();) {
    const size_t n = static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(replacement[i])));
    if (from < end) {
      last = src_.align[from];
      from += char_len(src_.text, from);
    }
    out_.text.append(replacement.substr(i, n));
    out_.align.insert(out_.align.end(), n, last);
    i += n;
  }
}

void aligned_normalize(AlignedText& t, text::Form form) {
  if (is_ascii(t.text)) return;  // every form leaves ASCII alone
  const std::string whole = text::normalize(t.text, form);
  // Segments start at characters of combining class 0, normalised one by one. When a segment's
  // result is not what the whole text gives there (a composition across starters, e.g. Hangul
  // jamo), it grows into the next one.
  AlignedBuilder b(t);
  size_t seg = 0, out_pos = 0;
  for (size_t i = 0; i < t.text.size();) {
    size_t next = i + char_len(t.text, i);
    while (next < t.text.size()) {
      int32_t cp = 0;
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(t.text.data() + next),
                       static_cast<utf8proc_ssize_t>(t.text.size() - next), &cp);
      if (cp < 0x80 || utf8proc_get_property(cp)->combining_class == 0) break;
      next += char_len(t.text, next);
    }
    i = next;
    const std::string_view piece(t.text.data() + seg, i - seg);
    const std::string out = is_ascii(piece) ? std::string(piece) : text::normalize(std::string(piece), form);
    if (whole.compare(out_pos, out.size(), out) != 0 && i < t.text.size()) continue;
    b.replace(seg, i, out);
    out_pos += out.size();
    seg = i;
  }
  AlignedText result = b.finish();
  if (result.text != whole) {  // not split cleanly anywhere: pair the whole text in order
    AlignedBuilder all(t);
    all.replace(0, t.text.size(), whole);
    result = all.finish();
  }
  t = std::move(result);
}

void aligned_lowercase(AlignedText& t) {
  AlignedBuilder b(t);
  std::string lower;
  for (size_t i = 0; i < t.text.size();) {
    const size_t n = char_len(t.text, i);
    if (static_cast<unsigned char>(t.text[i]) < 0x80) {
      lower.assign(1, static_cast<char>(t.text[i] >= 'A' && t.text[i] <= 'Z' ? t.text[i] - 'A' + 'a' : t.text[i]));
    } else {
      lower = text::lowercase(t.text.substr(i, n));
    }
    if (lower.size() == n && lower.compare(0, n, t.text, i, n) == 0) b.keep(i, i + n);
    else b.replace(i, i + n, lower);
    i += n;
  }
  t = b.finish();
}

void aligned_prepend(AlignedText& t, std::string_view s) {
  if (t.text.empty() || s.empty()) return;
  const Span first = t.align[0];
  t.text.insert(0, s);
  t.align.insert(t.align.begin(), s.size(), first);
}

}  // namespace moekit::io
