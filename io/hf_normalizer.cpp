#include "io/hf_normalizer.h"

#include <memory>

#include <nlohmann/json.hpp>

#include "io/hf_json.h"
#include "io/hf_pattern.h"
#include "io/precompiled_charsmap.h"
#include "io/unicode_text.h"
#include "model/error.h"

namespace moekit::io {

namespace {

using hf_json::Fields;
using text::CodePoints;

bool is_chinese_char(int32_t cp) {  // normalizers/bert.rs (its 0x2B920 differs from BERT's slow 0x2B820)
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// BertNormalizer drops Mn only; the StripAccents normalizer every mark (Mn, Mc, Me).
std::string strip_marks(const std::string& s, bool (*is_accent)(int32_t)) {
  CodePoints out;
  for (int32_t cp : text::decode(s))
    if (!is_accent(cp)) out.push_back(cp);
  return text::encode(out);
}

std::string strip(const std::string& s, bool left, bool right) {
  const CodePoints cps = text::decode(s);
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && text::is_whitespace(cps[b])) ++b;
  if (right)
    while (e > b && text::is_whitespace(cps[e - 1])) --e;
  return text::encode(CodePoints(cps.begin() + static_cast<std::ptrdiff_t>(b), cps.begin() + static_cast<std::ptrdiff_t>(e)));
}

std::string replace_all(const std::string& s, const Pattern& pattern, const std::string& content) {
  std::string out;
  size_t last = 0;
  for (const auto& [b, e] : pattern(s)) {
    out.append(s, last, b - last);
    out += content;
    last = e;
  }
  out.append(s, last, std::string::npos);
  return out;
}

}  // namespace

std::string bert_normalize(const std::string& s, bool clean_text, bool handle_chinese_chars, bool strip_accents,
                           bool lowercase) {
  CodePoints cps;
  for (int32_t cp : text::decode(s)) {
    if (clean_text) {
      const bool control = cp != '\t' && cp != '\n' && cp != '\r' && text::is_other(cp);
      if (cp == 0 || cp == 0xFFFD || control) continue;
      if (text::is_whitespace(cp)) cp = ' ';
    }
    if (handle_chinese_chars && is_chinese_char(cp)) cps.insert(cps.end(), {' ', cp, ' '});
    else cps.push_back(cp);
  }
  std::string out = text::encode(cps);
  if (strip_accents) out = strip_marks(text::normalize(out, text::Form::nfd), text::is_nonspacing_mark);
  if (lowercase) out = text::lowercase(out);
  return out;
}

Normalizer parse_normalizer(const nlohmann::json& j, const std::filesystem::path& file) {
  const std::string type = hf_json::type_of(j, file, "normalizer");
  const Fields f{j, file, "normalizer " + type};
  if (type == "BertNormalizer") {
    const bool clean = f.boolean_or("clean_text", true), chinese = f.boolean_or("handle_chinese_chars", true);
    const bool lower = f.boolean_or("lowercase", true);
    const bool accents = f.boolean_or("strip_accents", lower);
    return [=](const std::string& s) { return bert_normalize(s, clean, chinese, accents, lower); };
  }
  if (type == "NFC") return [](const std::string& s) { return text::normalize(s, text::Form::nfc); };
  if (type == "NFD") return [](const std::string& s) { return text::normalize(s, text::Form::nfd); };
  if (type == "NFKC") return [](const std::string& s) { return text::normalize(s, text::Form::nfkc); };
  if (type == "NFKD") return [](const std::string& s) { return text::normalize(s, text::Form::nfkd); };
  if (type == "Lowercase") return [](const std::string& s) { return text::lowercase(s); };
  if (type == "StripAccents")  // no NFD first (as the Rust library)
    return [](const std::string& s) { return strip_marks(s, text::is_mark); };
  if (type == "Strip") {
    const bool left = f.boolean_or("strip_left", true), right = f.boolean_or("strip_right", true);
    return [=](const std::string& s) { return strip(s, left, right); };
  }
  if (type == "Prepend") {
    const std::string prepend = f.string("prepend");
    return [prepend](const std::string& s) { return s.empty() ? s : prepend + s; };
  }
  if (type == "Replace") {
    const Pattern pattern = parse_pattern(f.need("pattern"), file, f.what);
    const std::string content = f.string("content");
    return [pattern, content](const std::string& s) { return replace_all(s, pattern, content); };
  }
  if (type == "Precompiled") {
    const std::string blob = decode_base64(f.string("precompiled_charsmap"), file, f.what);
    auto map = std::make_shared<const PrecompiledCharsmap>(blob, file);
    return [map](const std::string& s) { return map->normalize(s); };
  }
  if (type == "Sequence") {
    std::vector<Normalizer> parts;
    for (const auto& n : f.array("normalizers")) parts.push_back(parse_normalizer(n, file));
    return [parts](const std::string& s) {
      std::string out = s;
      for (const auto& p : parts) out = p(out);
      return out;
    };
  }
  fail(file, "unsupported normalizer \"" + type + "\"");
}

}  // namespace moekit::io
