#include "io/hf_pre_tokenizer.h"

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "io/hf_json.h"
#include "io/unicode_text.h"
#include "model/error.h"

namespace moekit::io {

namespace {

using hf_json::Fields;

// Each character for which pred holds is one match.
Matches char_matches(const std::string& s, bool (*pred)(int32_t)) {
  Matches out;
  size_t pos = 0;
  for (int32_t cp : text::decode(s)) {
    const size_t len = static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(s[pos])));
    if (pred(cp)) out.emplace_back(pos, pos + len);
    pos += len;
  }
  return out;
}

// Runs of characters of one class (pred true, or false) as matches.
Matches run_matches(const std::string& s, bool (*pred)(int32_t)) {
  Matches out;
  size_t pos = 0;
  for (int32_t cp : text::decode(s)) {
    const size_t len = static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(s[pos])));
    if (pred(cp)) {
      if (!out.empty() && out.back().second == pos) out.back().second = pos + len;
      else out.emplace_back(pos, pos + len);
    }
    pos += len;
  }
  return out;
}

Matches invert(const std::string& s, const Matches& m) {
  Matches out;
  size_t last = 0;
  for (const auto& [b, e] : m) {
    if (last < b) out.emplace_back(last, b);
    last = e;
  }
  if (last < s.size()) out.emplace_back(last, s.size());
  return out;
}

bool is_bert_punctuation(int32_t cp) { return text::is_ascii_punctuation(cp) || text::is_punctuation(cp); }

// Whitespace's regex \w+|[^\w\s]+: runs of word characters, runs of other non-space characters.
Matches word_or_symbol_runs(const std::string& s) {
  Matches out;
  size_t pos = 0;
  int last_kind = -1;
  for (int32_t cp : text::decode(s)) {
    const size_t len = static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(s[pos])));
    const int kind = text::is_word(cp) ? 0 : text::is_whitespace(cp) ? -1 : 1;  // the regex crate's \w
    if (kind >= 0) {
      if (kind == last_kind && !out.empty() && out.back().second == pos) out.back().second = pos + len;
      else out.emplace_back(pos, pos + len);
    }
    last_kind = kind;
    pos += len;
  }
  return out;
}

SplitBehavior parse_behavior(const Fields& f, const char* fallback) {
  const std::string b = f.string_or("behavior", fallback);
  if (b == "Removed") return SplitBehavior::removed;
  if (b == "Isolated") return SplitBehavior::isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (b == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (b == "Contiguous") return SplitBehavior::contiguous;
  f.fail_with("unknown behavior \"" + b + "\"");
}

// Applies fn to each piece (fn gives its new pieces); the first new piece inherits at_start.
template <typename Fn>
void split_each(Pieces& pieces, Fn fn) {
  Pieces out;
  for (Piece& p : pieces) {
    bool first = true;
    for (AlignedText& t : fn(p)) {
      if (t.text.empty()) continue;
      out.push_back({std::move(t), p.at_start && first});
      first = false;
    }
  }
  pieces = std::move(out);
}

std::vector<AlignedText> slices(const AlignedText& t, const Matches& ranges) {
  std::vector<AlignedText> out;
  out.reserve(ranges.size());
  for (const auto& [b, e] : ranges) out.push_back(t.slice(b, e));
  return out;
}

std::vector<AlignedText> split_text(const AlignedText& t, const Matches& matches, SplitBehavior behavior) {
  return slices(t, split_ranges(t.text, matches, behavior));
}

}  // namespace

Matches split_ranges(const std::string& s, const Matches& matches, SplitBehavior behavior) {
  struct Span {
    size_t b, e;
    bool match;
  };
  std::vector<Span> spans;
  size_t last = 0;
  for (const auto& [b, e] : matches) {
    if (last < b) spans.push_back({last, b, false});
    spans.push_back({b, e, true});
    last = e;
  }
  if (last < s.size() || spans.empty()) spans.push_back({last, s.size(), false});

  std::vector<Span> kept;  // (span, removed) as the Rust folds make them
  std::vector<bool> removed;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::isolated:
      for (const Span& sp : spans) kept.push_back(sp), removed.push_back(false);
      break;
    case SplitBehavior::removed:
      for (const Span& sp : spans) kept.push_back(sp), removed.push_back(sp.match);
      break;
    case SplitBehavior::contiguous:
      for (const Span& sp : spans) {
        if (sp.match == previous_match && !kept.empty()) kept.back().e = sp.e;
        else kept.push_back(sp), removed.push_back(false);
        previous_match = sp.match;
      }
      break;
    case SplitBehavior::merged_with_previous:
      for (const Span& sp : spans) {
        if (sp.match && !previous_match && !kept.empty()) kept.back().e = sp.e;
        else kept.push_back(sp), removed.push_back(false);
        previous_match = sp.match;
      }
      break;
    case SplitBehavior::merged_with_next:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !previous_match && !kept.empty()) kept.back().b = it->b;
        else kept.push_back(*it), removed.push_back(false);
        previous_match = it->match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
  }
  Matches out;
  for (size_t i = 0; i < kept.size(); ++i)
    if (!removed[i] && kept[i].e > kept[i].b) out.emplace_back(kept[i].b, kept[i].e);
  return out;
}

std::vector<std::string> split_by(const std::string& s, const Matches& matches, SplitBehavior behavior) {
  std::vector<std::string> out;
  for (const auto& [b, e] : split_ranges(s, matches, behavior)) out.push_back(s.substr(b, e - b));
  return out;
}

const std::string& byte_level_char(unsigned char b) {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int n = 0;
    for (int c = 0; c < 256; ++c) {
      const bool printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
      text::append_utf8(t[static_cast<size_t>(c)], printable ? c : 256 + n++);
    }
    return t;
  }();
  return table[b];
}

PreTokenizer parse_pre_tokenizer(const nlohmann::json& j, const std::filesystem::path& file) {
  const std::string type = hf_json::type_of(j, file, "pre_tokenizer");
  const Fields f{j, file, "pre_tokenizer " + type};
  if (type == "BertPreTokenizer") {
    return [](Pieces& pieces) {
      split_each(pieces, [](const Piece& p) {
        std::vector<AlignedText> out;
        for (AlignedText& w : split_text(p.text, char_matches(p.text.text, text::is_whitespace), SplitBehavior::removed))
          for (AlignedText& t : split_text(w, char_matches(w.text, is_bert_punctuation), SplitBehavior::isolated))
            out.push_back(std::move(t));
        return out;
      });
    };
  }
  if (type == "WhitespaceSplit") {
    return [](Pieces& pieces) {
      split_each(pieces, [](const Piece& p) {
        return split_text(p.text, char_matches(p.text.text, text::is_whitespace), SplitBehavior::removed);
      });
    };
  }
  if (type == "Whitespace") {
    return [](Pieces& pieces) {
      split_each(pieces, [](const Piece& p) {
        return slices(p.text, word_or_symbol_runs(p.text.text));  // the regex's matches; the gaps (spaces) go
      });
    };
  }
  if (type == "Punctuation") {
    const SplitBehavior b = parse_behavior(f, "Isolated");
    return [b](Pieces& pieces) {
      split_each(pieces, [b](const Piece& p) { return split_text(p.text, char_matches(p.text.text, is_bert_punctuation), b); });
    };
  }
  if (type == "Digits") {
    const bool individual = f.boolean_or("individual_digits", false);
    return [individual](Pieces& pieces) {
      split_each(pieces, [individual](const Piece& p) {
        return individual ? split_text(p.text, char_matches(p.text.text, text::is_number), SplitBehavior::isolated)
                          : split_text(p.text, run_matches(p.text.text, text::is_number), SplitBehavior::isolated);
      });
    };
  }
  if (type == "Split") {
    const Pattern pattern = parse_pattern(f.need("pattern"), file, f.what);
    const SplitBehavior b = parse_behavior(f, "Isolated");
    const bool inverted = f.boolean_or("invert", false);
    return [=](Pieces& pieces) {
      split_each(pieces, [&](const Piece& p) {
        Matches m = pattern(p.text.text);
        return split_text(p.text, inverted ? invert(p.text.text, m) : m, b);
      });
    };
  }
  if (type == "Metaspace") {
    const std::string replacement = f.string_or("replacement", "\xE2\x96\x81");
    if (text::decode(replacement).size() != 1) f.fail_with("\"replacement\" must be one character");
    std::string scheme = f.string_or("prepend_scheme", "always");
    if (!f.boolean_or("add_prefix_space", true)) {
      if (f.has("prepend_scheme") && scheme != "never") f.fail_with("add_prefix_space does not match prepend_scheme");
      scheme = "never";
    }
    if (scheme != "always" && scheme != "first" && scheme != "never") f.fail_with("unknown prepend_scheme \"" + scheme + "\"");
    const bool split = f.boolean_or("split", true);
    return [=](Pieces& pieces) {
      split_each(pieces, [&](const Piece& p) {
        AlignedBuilder b(p.text);  // each replacement maps to the space it replaces
        for (size_t i = 0; i < p.text.text.size(); ++i) {
          if (p.text.text[i] == ' ') b.replace(i, i + 1, replacement);
          else b.keep(i, i + 1);
        }
        AlignedText s = b.finish();
        const bool starts = s.text.compare(0, replacement.size(), replacement) == 0;
        if (!starts && (scheme == "always" || (scheme == "first" && p.at_start))) aligned_prepend(s, replacement);
        if (!split) return std::vector<AlignedText>{std::move(s)};
        Matches m;
        for (size_t pos = s.text.find(replacement); pos != std::string::npos; pos = s.text.find(replacement, pos + replacement.size()))
          m.emplace_back(pos, pos + replacement.size());
        return split_text(s, m, SplitBehavior::merged_with_next);
      });
    };
  }
  if (type == "ByteLevel") {
    const bool prefix = f.boolean_or("add_prefix_space", true), use_regex = f.boolean_or("use_regex", true);
    f.boolean_or("trim_offsets", true);  // offsets only
    return [=](Pieces& pieces) {
      split_each(pieces, [&](const Piece& p) {
        AlignedText s = p.text;
        if (prefix && (s.text.empty() || s.text[0] != ' ')) aligned_prepend(s, " ");
        std::vector<AlignedText> parts = use_regex ? split_text(s, gpt2_matches(s.text), SplitBehavior::isolated)
                                                   : std::vector<AlignedText>{s};
        for (AlignedText& part : parts) {
          AlignedBuilder mapped(part);  // every byte becomes one character, aligned as that byte
          for (size_t i = 0; i < part.text.size(); ++i)
            mapped.put(byte_level_char(static_cast<unsigned char>(part.text[i])), part.align[i]);
          part = mapped.finish();
        }
        return parts;
      });
    };
  }
  if (type == "Sequence") {
    std::vector<PreTokenizer> parts;
    for (const auto& p : f.array("pretokenizers")) parts.push_back(parse_pre_tokenizer(p, file));
    return [parts](Pieces& pieces) {
      for (const auto& p : parts) p(pieces);
    };
  }
  fail(file, "unsupported pre_tokenizer \"" + type + "\"");
}

}  // namespace moekit::io
