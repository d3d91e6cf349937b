#include "io/hf_pattern.h"

#include <memory>
#include <regex>

#include <nlohmann/json.hpp>

#include "io/unicode_text.h"
#include "model/error.h"

namespace moekit::io {

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

struct Chars {  // code points with their byte offsets (offsets has one extra entry: the end)
  text::CodePoints cps;
  std::vector<size_t> offsets;
  explicit Chars(const std::string& s) {
    size_t pos = 0;
    for (int32_t cp : text::decode(s)) {
      cps.push_back(cp);
      offsets.push_back(pos);
      pos += static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(s[pos])));
    }
    offsets.push_back(s.size());
  }
};

bool is_other_class(int32_t cp) { return !text::is_whitespace(cp) && !text::is_letter(cp) && !text::is_number(cp); }

Matches literal_matches(const std::string& s, const std::string& needle) {
  Matches out;
  for (size_t pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + needle.size()))
    out.emplace_back(pos, pos + needle.size());
  return out;
}

// ASCII regexes whose byte-wise and character-wise meanings agree (see the header).
bool byte_safe_regex(const std::string& r) {
  for (size_t i = 0; i < r.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(r[i]);
    if (c >= 0x80 || c == '.') return false;
    if (c == '[' && i + 1 < r.size() && r[i + 1] == '^') return false;
    if (c == '(' && i + 1 < r.size() && r[i + 1] == '?') {
      // lookarounds are fine, inline flags like (?i) are Oniguruma-only
      if (i + 2 >= r.size() || (r[i + 2] != '=' && r[i + 2] != '!' && r[i + 2] != ':')) return false;
    }
    if (c == '\\') {
      if (i + 1 >= r.size()) return false;
      const char e = r[++i];
      if (std::string("wWsSdDbBpPhHXRkgK0123456789xuU").find(e) != std::string::npos) return false;
    }
  }
  return true;
}

}  // namespace

Matches gpt2_matches(const std::string& s) {
  const Chars c(s);
  const size_t n = c.cps.size();
  Matches out;
  size_t i = 0;
  auto run = [&](size_t j, bool (*pred)(int32_t)) {
    while (j < n && pred(c.cps[j])) ++j;
    return j;
  };
  while (i < n) {
    size_t end = i;
    const int32_t cp = c.cps[i];
    if (cp == '\'' && i + 1 < n) {  // contractions, case-sensitive
      const int32_t a = c.cps[i + 1], b = i + 2 < n ? c.cps[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') end = i + 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) end = i + 3;
    }
    if (end == i) {
      const size_t j = cp == ' ' ? i + 1 : i;  // the optional leading space
      if (j < n && text::is_letter(c.cps[j])) end = run(j, text::is_letter);
      else if (j < n && text::is_number(c.cps[j])) end = run(j, text::is_number);
      else if (j < n && is_other_class(c.cps[j])) end = run(j, is_other_class);
    }
    if (end == i) {  // whitespace: \s+(?!\S) leaves the last space to the next word, else \s+
      const size_t k = run(i, text::is_whitespace);
      end = (k == n || k - i == 1) ? k : k - 1;
    }
    out.emplace_back(c.offsets[i], c.offsets[end]);
    i = end;
  }
  return out;
}

Pattern parse_pattern(const nlohmann::json& j, const std::filesystem::path& file, const std::string& component) {
  if (!j.is_object() || j.size() != 1)
    fail(file, component + ": \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
  const std::string kind = j.begin().key();
  const nlohmann::json& value = j.begin().value();
  if (!value.is_string()) fail(file, component + ": pattern " + kind + ": expected a string");
  const std::string p = value.get<std::string>();
  if (kind == "String") {
    if (p.empty()) fail(file, component + ": empty String pattern");
    return [p](const std::string& s) { return literal_matches(s, p); };
  }
  if (kind != "Regex") fail(file, component + ": unknown pattern kind \"" + kind + "\"");
  if (p == kGpt2Pattern) return gpt2_matches;
  if (!byte_safe_regex(p))
    fail(file, component + ": unsupported regex \"" + p +
                   "\" (moekit runs GPT-2's pattern and plain ASCII regexes without Unicode classes)");
  std::shared_ptr<const std::regex> re;
  try {
    re = std::make_shared<const std::regex>(p, std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error& e) {
    fail(file, component + ": regex \"" + p + "\": " + e.what());
  }
  return [re](const std::string& s) {
    Matches out;
    for (auto it = std::sregex_iterator(s.begin(), s.end(), *re); it != std::sregex_iterator(); ++it) {
      const auto pos = static_cast<size_t>(it->position()), len = static_cast<size_t>(it->length());
      if (len > 0) out.emplace_back(pos, pos + len);
    }
    return out;
  };
}

}  // namespace moekit::io
