#include "io/hf_normalizer.h"

#include <memory>

#include <nlohmann/json.hpp>

#include "io/hf_json.h"
#include "io/hf_pattern.h"
#include "io/precompiled_charsmap.h"
#include "io/unicode_text.h"
#include "io/utf8_chars.h"
#include "model/error.h"

namespace moekit::io {

namespace {

using hf_json::Fields;

bool is_chinese_char(int32_t cp) {  // normalizers/bert.rs (its 0x2B920 differs from BERT's slow 0x2B820)
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// BertNormalizer drops Mn only; the StripAccents normalizer every mark (Mn, Mc, Me).
void strip_marks(AlignedText& t, bool (*is_accent)(int32_t)) {
  AlignedBuilder b(t);
  text::for_each_char(t.text, [&](size_t begin, size_t end, int32_t cp) {
    if (!is_accent(cp)) b.keep(begin, end);
  });
  t = b.finish();
}

void strip(AlignedText& t, bool left, bool right) {
  size_t b = 0, e = t.text.size();
  const auto cp_at = [&](size_t i) {
    return text::decode(t.text.substr(i, static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(t.text[i])))))[0];
  };
  if (left)
    while (b < e && text::is_whitespace(cp_at(b))) b += static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(t.text[b])));
  if (right)
    while (e > b) {
      size_t p = e - 1;
      while (p > b && (static_cast<unsigned char>(t.text[p]) & 0xC0) == 0x80) --p;
      if (!text::is_whitespace(cp_at(p))) break;
      e = p;
    }
  t = t.slice(b, e);
}

// Every replacement byte maps to the match's last character, as NormalizedString::replace inserts.
void replace_all(AlignedText& t, const Pattern& pattern, const std::string& content) {
  AlignedBuilder out(t);
  size_t last = 0;
  for (const auto& [b, e] : pattern(t.text)) {
    out.keep(last, b);
    out.put(content, e > b ? t.align[e - 1] : t.original_span(b, b));
    last = e;
  }
  out.keep(last, t.text.size());
  t = out.finish();
}

Normalizer form(text::Form f) {
  return {[f](AlignedText& t) { aligned_normalize(t, f); }};
}

}  // namespace

std::string Normalizer::operator()(const std::string& s) const {
  AlignedText t = AlignedText::original(s);
  apply(t);
  return std::move(t.text);
}

void bert_normalize(AlignedText& t, bool clean_text, bool handle_chinese_chars, bool strip_accents, bool lowercase) {
  AlignedBuilder b(t);
  text::for_each_char(t.text, [&](size_t begin, size_t end, int32_t cp) {
    if (clean_text) {
      const bool control = cp != '\t' && cp != '\n' && cp != '\r' && text::is_other(cp);
      if (cp == 0 || cp == 0xFFFD || control) return;
      if (cp != ' ' && text::is_whitespace(cp)) return b.replace(begin, end, " ");
    }
    if (handle_chinese_chars && is_chinese_char(cp)) {
      std::string spaced = " ";
      text::append_utf8(spaced, cp);
      b.replace(begin, end, spaced + " ");  // all three map to the character
    } else {
      b.keep(begin, end);
    }
  });
  t = b.finish();
  if (strip_accents) {
    aligned_normalize(t, text::Form::nfd);
    strip_marks(t, text::is_nonspacing_mark);
  }
  if (lowercase) aligned_lowercase(t);
}

std::string bert_normalize(const std::string& s, bool clean_text, bool handle_chinese_chars, bool strip_accents,
                           bool lowercase) {
  AlignedText t = AlignedText::original(s);
  bert_normalize(t, clean_text, handle_chinese_chars, strip_accents, lowercase);
  return std::move(t.text);
}

Normalizer parse_normalizer(const nlohmann::json& j, const std::filesystem::path& file) {
  const std::string type = hf_json::type_of(j, file, "normalizer");
  const Fields f{j, file, "normalizer " + type};
  if (type == "BertNormalizer") {
    const bool clean = f.boolean_or("clean_text", true), chinese = f.boolean_or("handle_chinese_chars", true);
    const bool lower = f.boolean_or("lowercase", true);
    const bool accents = f.boolean_or("strip_accents", lower);
    return {[=](AlignedText& t) { bert_normalize(t, clean, chinese, accents, lower); }};
  }
  if (type == "NFC") return form(text::Form::nfc);
  if (type == "NFD") return form(text::Form::nfd);
  if (type == "NFKC") return form(text::Form::nfkc);
  if (type == "NFKD") return form(text::Form::nfkd);
  if (type == "Lowercase") return {[](AlignedText& t) { aligned_lowercase(t); }};
  if (type == "StripAccents")  // no NFD first (as the Rust library)
    return {[](AlignedText& t) { strip_marks(t, text::is_mark); }};
  if (type == "Strip") {
    const bool left = f.boolean_or("strip_left", true), right = f.boolean_or("strip_right", true);
    return {[=](AlignedText& t) { strip(t, left, right); }};
  }
  if (type == "Prepend") {
    const std::string prepend = f.string("prepend");
    return {[prepend](AlignedText& t) { aligned_prepend(t, prepend); }};
  }
  if (type == "Replace") {
    const Pattern pattern = parse_pattern(f.need("pattern"), file, f.what);
    const std::string content = f.string("content");
    return {[pattern, content](AlignedText& t) { replace_all(t, pattern, content); }};
  }
  if (type == "Precompiled") {
    const std::string blob = decode_base64(f.string("precompiled_charsmap"), file, f.what);
    auto map = std::make_shared<const PrecompiledCharsmap>(blob, file);
    return {[map](AlignedText& t) { map->normalize(t); }};
  }
  if (type == "Sequence") {
    std::vector<Normalizer> parts;
    for (const auto& n : f.array("normalizers")) parts.push_back(parse_normalizer(n, file));
    return {[parts](AlignedText& t) {
      for (const auto& p : parts) p(t);
    }};
  }
  fail(file, "unsupported normalizer \"" + type + "\"");
}

}  // namespace moekit::io
