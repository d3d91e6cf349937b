// Token offsets (byte ranges of the original text, TEI's start/stop) on hand-checked cases:
// alignment through each kind of normalisation, then each tokenizer kind. The byte-level BPE and
// Unigram expectations are Hugging Face tokenizers' own offsets for the same files (its Node.js binding,
// code points converted to bytes by hand); hundreds of texts more are
// tests/cli/e2e_tokenizer_offsets.sh.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "io/aligned_text.h"
#include "io/hf_normalizer.h"
#include "io/hf_tokenizer.h"
#include "io/wordpiece.h"

using namespace moekit::io;
using json = nlohmann::json;
using Offsets = std::vector<std::pair<size_t, size_t>>;
using Strings = std::vector<std::string>;

namespace Catch {  // failures print the ranges, not {?}
template <>
struct StringMaker<std::pair<size_t, size_t>> {
  static std::string convert(const std::pair<size_t, size_t>& p) {
    return "(" + std::to_string(p.first) + ", " + std::to_string(p.second) + ")";
  }
};
}  // namespace Catch

namespace {

const std::filesystem::path kData = std::filesystem::path(MOEKIT_TEST_DATA) / "tokenizers";

// The original range of each character of t.text.
Offsets char_spans(const AlignedText& t) {
  Offsets out;
  for (size_t i = 0; i < t.text.size(); i += static_cast<size_t>(text::utf8_length(static_cast<unsigned char>(t.text[i]))))
    out.emplace_back(t.align[i].begin, t.align[i].end);
  return out;
}

AlignedText normalized(const json& j, const std::string& s) {
  AlignedText t = AlignedText::original(s);
  parse_normalizer(j, "t.json")(t);
  return t;
}

}  // namespace

TEST_CASE("Alignments: expansions map to their source character, removed characters vanish", "[tokenizer][offsets]") {
  // NFKD: U+00BD (2 bytes) becomes three characters, all from bytes [1, 3).
  AlignedText half = normalized({{"type", "NFKD"}}, "a\u00bdb");
  CHECK(half.text == "a1\u20442b");
  CHECK(char_spans(half) == Offsets{{0, 1}, {1, 3}, {1, 3}, {1, 3}, {3, 4}});
  // NFC composes e + U+0301 into one character that keeps the e's range (the mark vanishes), as
  // NormalizedString does: a composed character takes its first source's alignment.
  AlignedText composed = normalized({{"type", "NFC"}}, "e\u0301x");
  CHECK(composed.text == "\u00e9x");
  CHECK(char_spans(composed) == Offsets{{0, 1}, {3, 4}});
  // Lower case of U+0130 is two characters, both from it.
  AlignedText dotted = normalized({{"type", "Lowercase"}}, "\u0130A");
  CHECK(dotted.text == "i\u0307a");
  CHECK(char_spans(dotted) == Offsets{{0, 2}, {0, 2}, {2, 3}});
  // BertNormalizer: control character dropped, tab to space, CJK padded with spaces that map to it,
  // accent stripped (NFD then drop Mn), upper case lowered.
  AlignedText bert = normalized({{"type", "BertNormalizer"}}, "\x01\xc3\x89\t\u4e2d");
  CHECK(bert.text == "e  \u4e2d ");
  CHECK(char_spans(bert) == Offsets{{1, 3}, {3, 4}, {4, 7}, {4, 7}, {4, 7}});
  // Replace: the content maps to the match's last character; Prepend to the first character.
  AlignedText rep = normalized({{"type", "Sequence"},
                                {"normalizers", json::array({{{"type", "Replace"}, {"pattern", {{"String", "ab"}}}, {"content", "XYZ"}},
                                                             {{"type", "Prepend"}, {"prepend", "_"}}})}},
                               "cab");
  CHECK(rep.text == "_cXYZ");
  CHECK(char_spans(rep) == Offsets{{0, 1}, {0, 1}, {2, 3}, {2, 3}, {2, 3}});
}

TEST_CASE("Offsets of BERT's vocab.txt WordPiece: lower case, accents, CJK, specials in the text", "[tokenizer][offsets]") {
  const WordPieceTokenizer tok(Vocab::from_tokens({"[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "un", "##want", "##ed",
                                                   ",", "runn", "##ing", "hello", "ah", "zz", "\u535a", "\u63a8"}),
                               true);
  Encoding e = tok.encode("UNwant\u00e9d,running", nullptr, 64);
  CHECK(e.tokens == Strings{"[CLS]", "un", "##want", "##ed", ",", "runn", "##ing", "[SEP]"});
  CHECK(e.offsets == Offsets{{0, 0}, {0, 2}, {2, 6}, {6, 9}, {9, 10}, {10, 14}, {14, 17}, {0, 0}});
  e = tok.encode_plain("ah\u535a\u63a8zz  H\u00e9l\x01lo\t[SEP]x");
  CHECK(e.tokens == Strings{"ah", "\u535a", "\u63a8", "zz", "hello", "[SEP]", "[UNK]"});
  CHECK(e.offsets == Offsets{{0, 2}, {2, 5}, {5, 8}, {8, 10}, {12, 19}, {20, 25}, {25, 26}});
  // Decomposed input: NFC first, so "e\u0301" is one character with the e's range.
  e = tok.encode_plain("he\u0301llo");
  CHECK(e.tokens == Strings{"hello"});
  CHECK(e.offsets == Offsets{{0, 7}});
  const std::string pair = "zz";
  e = tok.encode("ah", &pair, 64);
  CHECK(e.offsets == Offsets{{0, 0}, {0, 2}, {0, 0}, {0, 2}, {0, 0}});  // the pair's offsets are into the pair
}

TEST_CASE("Offsets of byte-level BPE: bytes of multi-byte characters, trimmed spaces, pairs", "[tokenizer][offsets]") {
  const auto tok = HfTokenizer::from_json_file(kData / "bpe" / "tokenizer.json");
  const std::string text = "h\u00e9llo \U0001F600 w\u00f6rld", pair = "pair \u00e9";
  const Encoding e = tok->encode(text, &pair, 64);
  CHECK(e.tokens == Strings{"<s>", "h", "\u00c3\u00a9", "ll", "o", "\u0120\u00f0\u0141", "\u013a", "\u0122", "\u0120w",
                            "\u00c3\u00b6", "r", "ld", "</s>", "</s>", "pa", "ir", "\u0120", "\u00c3\u00a9", "</s>"});
  // The emoji's three byte-level tokens each span the whole emoji; "Ġ" alone trims to empty.
  CHECK(e.offsets == Offsets{{0, 0}, {0, 1}, {1, 3}, {3, 5}, {5, 6}, {7, 11}, {7, 11}, {7, 11}, {12, 13}, {13, 15},
                             {15, 16}, {16, 18}, {0, 0}, {0, 0}, {0, 2}, {2, 4}, {5, 5}, {5, 7}, {0, 0}});
}

TEST_CASE("Offsets of tokenizer.json WordPiece and of added tokens found in the text", "[tokenizer][offsets]") {
  const auto tok = HfTokenizer::from_json_file(kData / "wordpiece" / "tokenizer.json");
  const std::string text = "Hello [MASK]\u00a0WORLD!!";
  const Encoding e = tok->encode_plain(text);
  REQUIRE(e.tokens.size() == e.offsets.size());
  REQUIRE(e.tokens.size() >= 4);
  CHECK(e.offsets.front() == std::pair<size_t, size_t>{0, 5});
  CHECK(e.tokens[1] == "[MASK]");
  CHECK(e.offsets[1] == std::pair<size_t, size_t>{6, 12});
  CHECK(e.offsets.back() == std::pair<size_t, size_t>{20, 21});  // the second "!"; U+00A0 is 2 bytes
  for (size_t k = 0; k < e.offsets.size(); ++k) CHECK(e.offsets[k].first < e.offsets[k].second);
}

TEST_CASE("Offsets of Unigram with a Precompiled charsmap: full-width, a ligature, a control character", "[tokenizer][offsets]") {
  const auto tok = HfTokenizer::from_json_file(kData / "unigram" / "tokenizer.json");
  const Encoding e = tok->encode_plain("\uff21\uff22 \ufb01ne\x01 x");
  CHECK(e.tokens == Strings{"\u2581A", "B", "\u2581f", "ine", "\u2581", "x"});
  // Each full-width letter is 3 bytes; U+FB01 (bytes 7-10) becomes "fi", both halves from it, so
  // "▁f" and "ine" overlap on it; the control character (byte 12) vanishes; "▁" is the space.
  CHECK(e.offsets == Offsets{{0, 3}, {3, 6}, {6, 10}, {7, 12}, {13, 14}, {14, 15}});
}
