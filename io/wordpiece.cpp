#include "io/wordpiece.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "io/aligned_text.h"
#include "io/hf_json.h"
#include "io/unicode_text.h"
#include "io/utf8_chars.h"
#include "model/error.h"

namespace moekit::io {

namespace {

using text::CodePoints;

// HF's all_special_tokens: split out of the text before anything else and never altered.
const char* const kSpecialTokens[] = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};

bool is_special(const std::string& s) {
  for (const char* t : kSpecialTokens)
    if (s == t) return true;
  return false;
}

using text::append_utf8;
using text::decode;
using text::for_each_char;

bool category_starts_with_c(utf8proc_category_t c) {
  return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CS ||
         c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CN;
}

// tokenization.py _is_control: any category C* except \t \n \r.
bool is_control(int32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return category_starts_with_c(utf8proc_category(cp));
}

// tokenization.py _is_whitespace (mapped to ' ' by _clean_text).
bool is_bert_whitespace(int32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' ||
         utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS;
}

// Python's str.isspace (used by whitespace_tokenize's split()): Zs or bidi class WS/B/S.
// After cleaning this adds U+2028 and U+2029, which BERT does not map to ' ' but split() splits on.
bool is_python_space(int32_t cp) {
  const utf8proc_property_t* p = utf8proc_get_property(cp);
  return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
         p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

// tokenization.py _is_punctuation: all non-alphanumeric ASCII, plus Unicode P*.
bool is_punctuation(int32_t cp) { return text::is_ascii_punctuation(cp) || text::is_punctuation(cp); }

// tokenization.py _is_chinese_char: the CJK Unified Ideographs blocks only (not kana/Hangul).
bool is_cjk(int32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// Lower-case per character (HF's regex lowers one character at a time), NFD, drop Mn.
void lower_strip_accents(AlignedText& word) {
  AlignedBuilder lowered(word);
  for_each_char(word.text, [&](size_t b, size_t e, int32_t cp) {
    const int32_t lower = utf8proc_tolower(cp);
    if (lower == cp) return lowered.keep(b, e);
    std::string l;
    append_utf8(l, lower);
    lowered.replace(b, e, l);
  });
  word = lowered.finish();
  aligned_normalize(word, text::Form::nfd);
  AlignedBuilder kept(word);
  for_each_char(word.text, [&](size_t b, size_t e, int32_t cp) {
    if (utf8proc_category(cp) != UTF8PROC_CATEGORY_MN) kept.keep(b, e);
  });
  word = kept.finish();
}

// _run_split_on_punc: every punctuation character becomes its own token.
void split_on_punctuation(const AlignedText& word, std::vector<AlignedText>& out) {
  size_t start = 0;
  for_each_char(word.text, [&](size_t b, size_t e, int32_t cp) {
    if (!is_punctuation(cp)) return;
    if (start < b) out.push_back(word.slice(start, b));
    out.push_back(word.slice(b, e));
    start = e;
  });
  if (start < word.text.size()) out.push_back(word.slice(start, word.text.size()));
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(Vocab vocab, bool do_lower_case)
    : vocab_(std::move(vocab)), do_lower_case_(do_lower_case) {
  auto need = [&](const char* token) {
    int32_t id = vocab_.id(token);
    if (id < 0) fail(vocab_.path, std::string("vocabulary has no ") + token + " token");
    return id;
  };
  cls_id_ = need("[CLS]");
  sep_id_ = need("[SEP]");
  unk_id_ = need("[UNK]");
}

std::vector<AlignedText> WordPieceTokenizer::basic_tokenize(const std::string& segment, size_t base) const {
  // _clean_text + _tokenize_chinese_chars in one pass; offsets as BertNormalizer's alignments.
  const AlignedText original = AlignedText::original(segment, base);
  AlignedBuilder cleaned(original);
  for_each_char(segment, [&](size_t b, size_t e, int32_t cp) {
    if (cp == 0 || cp == 0xFFFD || is_control(cp)) return;
    if (is_bert_whitespace(cp)) {
      cleaned.replace(b, e, " ");
    } else if (is_cjk(cp)) {
      std::string spaced = " ";
      append_utf8(spaced, cp);
      cleaned.replace(b, e, spaced + " ");
    } else {
      cleaned.keep(b, e);
    }
  });
  AlignedText nfc = cleaned.finish();
  aligned_normalize(nfc, text::Form::nfc);

  std::vector<AlignedText> out;
  size_t word_start = std::string::npos;
  auto flush = [&](size_t end) {
    if (word_start == std::string::npos) return;
    AlignedText word = nfc.slice(word_start, end);
    word_start = std::string::npos;
    if (is_special(word.text)) {  // BasicTokenizer's never_split: no lower-casing, no splitting
      out.push_back(std::move(word));
      return;
    }
    if (do_lower_case_) lower_strip_accents(word);
    split_on_punctuation(word, out);  // an all-accent word vanishes here, as in Python
  };
  for_each_char(nfc.text, [&](size_t b, size_t, int32_t cp) {
    if (is_python_space(cp)) flush(b);
    else if (word_start == std::string::npos) word_start = b;
  });
  flush(nfc.text.size());
  return out;
}

void WordPieceTokenizer::wordpiece(const AlignedText& aligned, std::vector<std::string>& out,
                                   std::vector<std::pair<size_t, size_t>>& offsets_out) const {
  const std::string& word = aligned.text;
  auto emit = [&](std::string piece, size_t b, size_t e) {
    const Span at = aligned.original_span(b, e);
    out.push_back(std::move(piece));
    offsets_out.emplace_back(at.begin, at.end);
  };
  // Byte offset of each character boundary; "characters" are code points, as in Python.
  std::vector<size_t> offsets;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(word.data());
  utf8proc_ssize_t pos = 0, n = static_cast<utf8proc_ssize_t>(word.size());
  while (pos < n) {
    offsets.push_back(static_cast<size_t>(pos));
    utf8proc_int32_t cp;
    utf8proc_ssize_t len = utf8proc_iterate(p + pos, n - pos, &cp);
    if (len <= 0) fail("", "invalid UTF-8 in word");  // unreachable: input was validated
    pos += len;
  }
  const size_t n_chars = offsets.size();
  offsets.push_back(word.size());
  if (n_chars > static_cast<size_t>(kMaxCharsPerWord)) {
    emit("[UNK]", 0, word.size());
    return;
  }
  std::vector<std::string> pieces;
  std::vector<std::pair<size_t, size_t>> ranges;
  size_t start = 0;
  while (start < n_chars) {
    size_t end = n_chars;
    bool found = false;
    std::string piece;
    while (start < end) {  // greedy longest match first
      piece = (start > 0 ? "##" : "") + word.substr(offsets[start], offsets[end] - offsets[start]);
      if (vocab_.contains(piece)) {
        found = true;
        break;
      }
      --end;
    }
    if (!found) {  // one unmatchable piece makes the whole word [UNK]
      emit("[UNK]", 0, word.size());
      return;
    }
    pieces.push_back(std::move(piece));
    ranges.emplace_back(offsets[start], offsets[end]);
    start = end;
  }
  for (size_t k = 0; k < pieces.size(); ++k) emit(std::move(pieces[k]), ranges[k].first, ranges[k].second);
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  std::vector<std::pair<size_t, size_t>> offsets;
  tokenize(text, out, offsets);
  return out;
}

void WordPieceTokenizer::tokenize(const std::string& text, std::vector<std::string>& out,
                                  std::vector<std::pair<size_t, size_t>>& offsets) const {
  decode(text);  // validate once; the pieces below are then valid too
  auto flush = [&](size_t from, size_t to) {
    if (from >= to) return;
    for (const AlignedText& word : basic_tokenize(text.substr(from, to - from), from)) wordpiece(word, out, offsets);
  };
  // HF splits special tokens out of the raw text first (case-sensitive, anywhere in the text).
  // They are ASCII, so a byte match cannot land inside a multi-byte character.
  size_t seg_start = 0, i = 0;
  while (i < text.size()) {
    const char* match = nullptr;
    if (text[i] == '[') {
      for (const char* t : kSpecialTokens)
        if (text.compare(i, std::char_traits<char>::length(t), t) == 0) match = t;
    }
    if (!match) {
      ++i;
      continue;
    }
    flush(seg_start, i);
    out.emplace_back(match);
    const size_t n = std::char_traits<char>::length(match);
    offsets.emplace_back(i, i + n);
    i += n;
    seg_start = i;
  }
  flush(seg_start, text.size());
}

std::vector<int32_t> WordPieceTokenizer::to_ids(const std::vector<std::string>& tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(tokens.size());
  for (const std::string& t : tokens) {
    int32_t id = vocab_.id(t);
    ids.push_back(id < 0 ? unk_id_ : id);
  }
  return ids;
}

WordPieceTokenizer::Encoded WordPieceTokenizer::encode_plain(const std::string& text) const {
  Encoding enc;
  tokenize(text, enc.tokens, enc.offsets);
  enc.ids = to_ids(enc.tokens);
  enc.tokens.clear();
  for (int32_t id : enc.ids) enc.tokens.push_back(vocab_.tokens[static_cast<size_t>(id)]);
  enc.type_ids.assign(enc.ids.size(), 0);
  enc.special.assign(enc.ids.size(), 0);  // only added [CLS]/[SEP] count as special, as before
  return enc;
}

WordPieceTokenizer::Encoded WordPieceTokenizer::encode(const std::string& text,
                                                       const std::string* text_pair,
                                                       int max_len) const {
  const int n_special = text_pair ? 3 : 2;
  if (max_len < n_special)
    fail("", "max_len " + std::to_string(max_len) + " leaves no room for the " +
                 std::to_string(n_special) + " special tokens; expected max_len >= " +
                 std::to_string(n_special));
  const Encoding a = encode_plain(text), b = text_pair ? encode_plain(*text_pair) : Encoding{};
  size_t n_a = a.ids.size(), n_b = b.ids.size();

  // HF truncate_sequences, "longest_first": one token at a time from the longer sequence,
  // from the pair on ties. (HF's closed form removes the same tokens.)
  size_t budget = static_cast<size_t>(max_len - n_special);
  while (n_a + n_b > budget) {
    if (!text_pair || n_a > n_b)
      --n_a;
    else
      --n_b;
  }

  Encoded enc;
  auto add = [&](const Encoding& e, size_t n, int32_t type_id) {
    enc.ids.insert(enc.ids.end(), e.ids.begin(), e.ids.begin() + static_cast<std::ptrdiff_t>(n));
    enc.offsets.insert(enc.offsets.end(), e.offsets.begin(), e.offsets.begin() + static_cast<std::ptrdiff_t>(n));
    enc.type_ids.resize(enc.ids.size(), type_id);
  };
  auto add_special = [&](int32_t id, int32_t type_id) {
    enc.ids.push_back(id);
    enc.offsets.emplace_back(0, 0);
    enc.type_ids.push_back(type_id);
  };
  enc.ids.reserve(n_a + n_b + static_cast<size_t>(n_special));
  add_special(cls_id_, 0);
  add(a, n_a, 0);
  add_special(sep_id_, 0);
  if (text_pair) {
    add(b, n_b, 1);
    add_special(sep_id_, 1);
  }
  enc.special.assign(enc.ids.size(), 0);
  enc.special.front() = 1;
  enc.special.back() = 1;
  if (text_pair) enc.special[n_a + 1] = 1;
  enc.tokens.reserve(enc.ids.size());
  for (int32_t id : enc.ids) enc.tokens.push_back(vocab_.tokens[static_cast<size_t>(id)]);
  return enc;
}

bool read_do_lower_case(const std::filesystem::path& model_dir) {
  const std::filesystem::path file = model_dir / "tokenizer_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return true;
  const nlohmann::json config = hf_json::read_json_file(file, 16 << 20);  // real ones are a few KB
  check(config.is_object(), file, std::string("expected a JSON object, got ") + config.type_name());
  auto it = config.find("do_lower_case");
  if (it == config.end() || it->is_null()) return true;
  check(it->is_boolean(), file,
        std::string("\"do_lower_case\": expected a boolean, got ") + it->type_name());
  return it->get<bool>();
}

}  // namespace moekit::io
