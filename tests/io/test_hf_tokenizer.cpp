// tokenizer.json components on hand-checked examples, the AutoTokenizer choice of a model
// directory, and the error of each bad or unsupported component. (Parity with Hugging Face's own
// library on hundreds of texts is tests/cli/e2e_tokenizer_parity.sh.)
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/hf_normalizer.h"
#include "io/hf_pattern.h"
#include "io/hf_pre_tokenizer.h"
#include "io/hf_tokenizer.h"
#include "io/precompiled_charsmap.h"
#include "io/tokenizer.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using namespace moekit::io;
using Catch::Matchers::Contains;
using json = nlohmann::json;
using Strings = std::vector<std::string>;

namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(MOEKIT_TEST_DATA) / "tokenizers";

Strings texts_of(const std::string& s, const Matches& m) {
  Strings out;
  for (const auto& [b, e] : m) out.push_back(s.substr(b, e - b));
  return out;
}

Strings pre_tokenize(const json& j, const std::string& s) {
  Pieces pieces{{AlignedText::original(s), true}};
  parse_pre_tokenizer(j, "t.json")(pieces);
  Strings out;
  for (const Piece& p : pieces) out.push_back(p.text.text);
  return out;
}

// Writes j as tokenizer.json in a fresh directory.
fs::path write_tokenizer(const std::string& name, json j) {
  const fs::path dir = moekit::test::unique_scratch_dir(name);
  std::ofstream(dir / "tokenizer.json") << j.dump();
  return dir / "tokenizer.json";
}

json wordpiece_json(const Strings& tokens) {
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", {{"type", "BertNormalizer"}, {"lowercase", true}}},
          {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
          {"post_processor", {{"type", "BertProcessing"}, {"sep", {"[SEP]", 2}}, {"cls", {"[CLS]", 1}}}},
          {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"vocab", vocab}}}};
}

const Strings kWords{"[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "a", "b", "c", "d", "e", ",", "!"};

}  // namespace

TEST_CASE("GPT-2's pattern splits contractions, words with their space, and keeps the last space of a run",
          "[tokenizer]") {
  const std::string s = "Hello world's  end!! 42x\n";
  CHECK(texts_of(s, gpt2_matches(s)) == Strings{"Hello", " world", "'s", " ", " end", "!!", " 42", "x", "\n"});
  CHECK(texts_of("a \t b", gpt2_matches("a \t b")) == Strings{"a", " \t", " b"});
}

TEST_CASE("Split behaviours follow Hugging Face's NormalizedString::split", "[tokenizer]") {
  const std::string s = "a-b--c";
  const Matches dashes{{1, 2}, {3, 4}, {4, 5}};
  CHECK(split_by(s, dashes, SplitBehavior::removed) == Strings{"a", "b", "c"});
  CHECK(split_by(s, dashes, SplitBehavior::isolated) == Strings{"a", "-", "b", "-", "-", "c"});
  CHECK(split_by(s, dashes, SplitBehavior::merged_with_previous) == Strings{"a-", "b-", "-", "c"});
  CHECK(split_by(s, dashes, SplitBehavior::merged_with_next) == Strings{"a", "-b", "-", "-c"});
  CHECK(split_by(s, dashes, SplitBehavior::contiguous) == Strings{"a", "-", "b", "--", "c"});
}

TEST_CASE("pre-tokenizers on hand-checked examples", "[tokenizer]") {
  CHECK(pre_tokenize({{"type", "BertPreTokenizer"}}, "Hi, there!") == Strings{"Hi", ",", "there", "!"});
  CHECK(pre_tokenize({{"type", "Whitespace"}}, "it's 3.5\tok") == Strings{"it", "'", "s", "3", ".", "5", "ok"});
  CHECK(pre_tokenize({{"type", "WhitespaceSplit"}}, " a\u00a0b  c ") == Strings{"a", "b", "c"});
  CHECK(pre_tokenize({{"type", "Digits"}, {"individual_digits", true}}, "a12b") == Strings{"a", "1", "2", "b"});
  CHECK(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "a12b") == Strings{"a", "12", "b"});
  CHECK(pre_tokenize({{"type", "Punctuation"}, {"behavior", "MergedWithPrevious"}}, "a.b") == Strings{"a.", "b"});
  CHECK(pre_tokenize({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "always"}}, "Hey  you") ==
        Strings{"\u2581Hey", "\u2581", "\u2581you"});
  CHECK(pre_tokenize({{"type", "Metaspace"}, {"prepend_scheme", "never"}, {"split", false}}, "a b") ==
        Strings{"a\u2581b"});
  // GPT-2's byte alphabet: space -> U+0120, newline -> U+010A, printable ASCII unchanged.
  CHECK(pre_tokenize({{"type", "ByteLevel"}, {"add_prefix_space", true}}, "hi\n") == Strings{"\u0120hi", "\u010A"});
  CHECK(byte_level_char(0xE9) == "\u00E9");
  CHECK(byte_level_char(0x00) == "\u0100");
  CHECK(pre_tokenize({{"type", "Split"}, {"pattern", {{"String", "--"}}}, {"behavior", "Removed"}}, "a--b----c") ==
        Strings{"a", "b", "c"});
  CHECK(pre_tokenize({{"type", "Split"}, {"pattern", {{"String", "x"}}}, {"behavior", "Removed"}, {"invert", true}},
                     "axbx") == Strings{"x", "x"});
}

TEST_CASE("normalizers on hand-checked examples", "[tokenizer]") {
  CHECK(bert_normalize("H\u00e9llo\tWORLD\u4e2d\u6587\x01", true, true, true, true) == "hello world \u4e2d  \u6587 ");
  CHECK(bert_normalize("H\u00e9llo", true, true, false, true) == "h\u00e9llo");
  auto run = [](const json& j, const std::string& s) { return parse_normalizer(j, "t.json")(s); };
  CHECK(run({{"type", "NFKC"}}, "\ufb01\uff21\u2460") == "fiA1");
  CHECK(run({{"type", "NFD"}}, "\u00e9") == "e\u0301");
  CHECK(run({{"type", "NFC"}}, "e\u0301") == "\u00e9");
  CHECK(run({{"type", "NFKD"}}, "\u00bd") == "1\u20442");
  CHECK(run({{"type", "Lowercase"}}, "\u0130A\u03a3") == "i\u0307a\u03c3");  // full mapping, no final-sigma rule
  CHECK(run({{"type", "StripAccents"}}, "e\u0301\u00e9\u0915\u093f") == "e\u00e9\u0915");  // every mark, no NFD
  CHECK(run({{"type", "Prepend"}, {"prepend", "\u2581"}}, "a") == "\u2581a");
  CHECK(run({{"type", "Prepend"}, {"prepend", "\u2581"}}, "") == "");
  CHECK(run({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "_"}}, "a b  c") == "a_b__c");
  CHECK(run({{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}}, "a  b     c d") == "a b c d");
  CHECK(run({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}, "  a  ") == "a  ");
  CHECK(run({{"type", "Sequence"}, {"normalizers", {{{"type", "NFD"}}, {{"type", "StripAccents"}}, {{"type", "Lowercase"}}}}},
            "\u00c9t\u00c9") == "ete");
}

TEST_CASE("the Precompiled normalizer decodes a darts-clone trie", "[tokenizer]") {
  // One key, "A" -> "a", laid out by hand: root base 1, child at 1^0x41 = 0x40 with base 2 (offset
  // 0x40^2), its leaf value (offset 0 of the strings) at 2.
  std::vector<uint32_t> units(256, 0);
  units[0] = 1u << 10;
  units[0x40] = (0x42u << 10) | (1u << 8) | 0x41;
  units[2] = 0x80000000u | 0;
  std::string blob(4 + units.size() * 4, '\0');
  const uint32_t trie_bytes = static_cast<uint32_t>(units.size() * 4);
  std::memcpy(&blob[0], &trie_bytes, 4);
  std::memcpy(&blob[4], units.data(), trie_bytes);
  blob += std::string("a\0", 2);
  const PrecompiledCharsmap map(blob, "t.json");
  CHECK(map.transform("A") == std::optional<std::string_view>("a"));
  CHECK_FALSE(map.transform("B").has_value());
  CHECK(map.normalize("ABA\u00e9") == "aBa\u00e9");

  // The committed charsmap (made by tests/data/tokenizers/make_fixtures.js from NFKC and a few rules).
  std::ifstream in(kData / "unigram" / "charsmap.bin", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const PrecompiledCharsmap nfkc(bytes, "charsmap.bin");
  CHECK(nfkc.normalize("\ufb01 \uff21\uff22\uff23 \u2122") == "fi ABC TM");
  CHECK(nfkc.normalize("cafe\u0301") == "caf\u00e9");  // the grapheme e + U+0301 is one key
  CHECK(nfkc.normalize("a\u200bb\u00adc") == "abc");
  CHECK(nfkc.normalize("plain ascii") == "plain ascii");
}

TEST_CASE("models: WordPiece longest match, BPE merge ranks, Unigram Viterbi", "[tokenizer]") {
  auto tokens = [](const fs::path& file, const std::string& text) {
    return HfTokenizer::from_json_file(file)->encode_plain(text).tokens;
  };
  const fs::path wp = write_tokenizer("wp", wordpiece_json(kWords));
  CHECK(tokens(wp, "unaffable, Unable!") == Strings{"un", "##aff", "##able", ",", "un", "##able", "!"});
  CHECK(tokens(wp, "Unbd") == Strings{"[UNK]"});  // "##b" is missing: the whole word is unknown

  json bpe = {{"model",
               {{"type", "BPE"},
                {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5}, {"<unk>", 6}}},
                {"merges", {"b c", "a b", "a bc"}},
                {"unk_token", "<unk>"},
                {"fuse_unk", true}}},
              {"pre_tokenizer", {{"type", "WhitespaceSplit"}}}};
  const fs::path bpe_file = write_tokenizer("bpe", bpe);
  CHECK(tokens(bpe_file, "abc ab cab") == Strings{"abc", "ab", "c", "ab"});   // b c first, then a bc
  CHECK(tokens(bpe_file, "xyab") == Strings{"<unk>", "ab"});                   // unknowns fused
  bpe["model"]["merges"] = json::array({json::array({"a", "b"}), json::array({"ab", "c"})});  // array form, ranks swapped
  CHECK(tokens(write_tokenizer("bpe2", bpe), "abc") == Strings{"abc"});

  json uni = {{"model",
               {{"type", "Unigram"},
                {"unk_id", 0},
                {"vocab", json::array({json::array({"<unk>", 0.0}), json::array({"a", -1.0}), json::array({"b", -1.0}),
                                       json::array({"ab", -1.5}), json::array({"abc", -5.0}), json::array({"c", -3.0})})}}}};
  const fs::path uni_file = write_tokenizer("uni", uni);
  const auto enc = HfTokenizer::from_json_file(uni_file)->encode_plain("abcxxab");
  CHECK(enc.tokens == Strings{"ab", "c", "xx", "ab"});  // -1.5-3 beats -5 and -5; unknown run fused
  CHECK(enc.ids == std::vector<int32_t>{3, 5, 0, 3});
}

TEST_CASE("post-processors and Hugging Face's longest_first truncation of pairs", "[tokenizer]") {
  const fs::path wp = write_tokenizer("wp", wordpiece_json(kWords));
  const auto tok = HfTokenizer::from_json_file(wp);
  const std::string ten = "a b c d e a b c d e";
  const std::string* none = nullptr;
  auto enc = tok->encode(ten, &ten, 10);  // budget 7: the longer text gets the odd token
  CHECK(enc.tokens == Strings{"[CLS]", "a", "b", "c", "[SEP]", "a", "b", "c", "d", "[SEP]"});
  CHECK(enc.type_ids == std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1});
  const std::string two = "a b";
  enc = tok->encode(two, &ten, 10);  // the short text stays whole
  CHECK(enc.tokens == Strings{"[CLS]", "a", "b", "[SEP]", "a", "b", "c", "d", "e", "[SEP]"});
  enc = tok->encode(ten, none, 4);
  CHECK(enc.tokens == Strings{"[CLS]", "a", "b", "[SEP]"});
  CHECK_THROWS_WITH(tok->encode(ten, &ten, 2), Contains("no room for the 3 special tokens"));

  json j = wordpiece_json(kWords);
  j["post_processor"] = {{"type", "RobertaProcessing"}, {"sep", {"[SEP]", 2}}, {"cls", {"[CLS]", 1}}};
  j["truncation"] = {{"max_length", 512}, {"strategy", "OnlySecond"}, {"direction", "Left"}, {"stride", 0}};
  enc = HfTokenizer::from_json_file(write_tokenizer("rob", j))->encode(two, &ten, 9);
  CHECK(enc.tokens == Strings{"[CLS]", "a", "b", "[SEP]", "[SEP]", "c", "d", "e", "[SEP]"});  // left: the end kept
  CHECK(enc.type_ids == std::vector<int32_t>(9, 0));
}

TEST_CASE("added tokens: split before normalization, lstrip, single_word", "[tokenizer]") {
  json j = wordpiece_json(kWords);
  j["added_tokens"] = {{{"id", 13}, {"content", "<M>"}, {"lstrip", true}, {"special", true}, {"normalized", false}},
                       {{"id", 14}, {"content", "ab"}, {"single_word", true}, {"normalized", true}}};
  j["model"]["vocab"]["<M>"] = 13;
  j["model"]["vocab"]["ab"] = 14;
  const auto tok = HfTokenizer::from_json_file(write_tokenizer("added", j));
  const auto enc = tok->encode_plain("a  <M>b AB abc");
  CHECK(enc.tokens == Strings{"a", "  <M>", "b", "ab", "[UNK]"});  // "abc" is no single word "ab"
  CHECK(enc.ids == std::vector<int32_t>{6, 13, 7, 14, 0});
  CHECK(enc.special == std::vector<uint8_t>{0, 1, 0, 0, 0});
  CHECK(tok->token_id("<M>") == 13);
  CHECK(tok->id_limit() == 15);
}

TEST_CASE("a model directory's tokenizer is chosen as AutoTokenizer does", "[tokenizer]") {
  const fs::path both = moekit::test::unique_scratch_dir("choice");
  std::ofstream(both / "vocab.txt") << "[UNK]\n[CLS]\n[SEP]\nhello\n";
  CHECK(load_tokenizer(both)->describe() == "wordpiece (vocab.txt)");
  fs::copy_file(kData / "bpe-slow" / "vocab.json", both / "vocab.json");
  fs::copy_file(kData / "bpe-slow" / "merges.txt", both / "merges.txt");
  CHECK(load_tokenizer(both)->describe() == "bpe (vocab.json + merges.txt)");
  fs::copy_file(kData / "unigram" / "tokenizer.json", both / "tokenizer.json");
  CHECK(load_tokenizer(both)->describe() == "unigram (tokenizer.json)");
  const fs::path empty = moekit::test::unique_scratch_dir("choice_empty");
  std::ofstream(empty / "spiece.model") << "x";
  CHECK_THROWS_WITH(load_tokenizer(empty), Contains("no tokenizer") && Contains("needs its tokenizer.json"));
}

TEST_CASE("tokenizer.json errors name the file and the component", "[tokenizer][corrupt]") {
  auto error_of = [](json j) {
    const fs::path f = write_tokenizer("bad", std::move(j));
    try {
      HfTokenizer::from_json_file(f);
    } catch (const moekit::Error& e) {
      const std::string what = e.what();
      CHECK_THAT(what, Contains("tokenizer.json"));
      return what;
    }
    return std::string("no error");
  };
  json j = wordpiece_json(kWords);
  j["normalizer"] = {{"type", "Foo"}};
  CHECK_THAT(error_of(j), Contains("unsupported normalizer \"Foo\""));
  j = wordpiece_json(kWords);
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "UnicodeScripts"}}}}};
  CHECK_THAT(error_of(j), Contains("unsupported pre_tokenizer \"UnicodeScripts\""));
  j = wordpiece_json(kWords);
  j["post_processor"] = {{"type", "Sequence"}, {"processors", json::array()}};
  CHECK_THAT(error_of(j), Contains("unsupported post_processor \"Sequence\""));
  j = wordpiece_json(kWords);
  j["decoder"] = {{"type", "Mystery"}};
  CHECK_THAT(error_of(j), Contains("unsupported decoder \"Mystery\""));
  j = wordpiece_json(kWords);
  j["model"]["type"] = "WordLevel";
  CHECK_THAT(error_of(j), Contains("unsupported model \"WordLevel\""));
  j = wordpiece_json(kWords);
  j["extra"] = 1;
  CHECK_THAT(error_of(j), Contains("unknown key \"extra\""));
  j = wordpiece_json(kWords);
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\p{L}+"}}}, {"behavior", "Isolated"}};
  CHECK_THAT(error_of(j), Contains("unsupported regex"));
  j = wordpiece_json(kWords);
  j["model"]["unk_token"] = "<nope>";
  CHECK_THAT(error_of(j), Contains("unk_token \"<nope>\" is not in the vocabulary"));
  j = wordpiece_json(kWords);
  j["model"]["vocab"]["x"] = -4;
  CHECK_THAT(error_of(j), Contains("out of range"));
  j = wordpiece_json(kWords);
  j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAA"}};
  CHECK_THAT(error_of(j), Contains("invalid base64"));
  j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "/////w=="}};
  CHECK_THAT(error_of(j), Contains("does not fit the charsmap"));
  j = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", {"a b"}}}}};
  CHECK_THAT(error_of(j), Contains("merge 1") && Contains("\"b\" is not in the vocabulary"));
  j = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", json::array()}, {"dropout", 0.1}}}};
  CHECK_THAT(error_of(j), Contains("dropout"));
  j = {{"model", {{"type", "Unigram"}, {"vocab", json::array({json::array({"a", -1.0})})}, {"unk_id", 5}}}};
  CHECK_THAT(error_of(j), Contains("unk_id 5 is outside"));
  j = {{"model", {{"type", "Unigram"}, {"vocab", json::array({json::array({"a", "x"})})}}}};
  CHECK_THAT(error_of(j), Contains("vocab entry 0"));

  const fs::path dir = moekit::test::unique_scratch_dir("badjson");
  std::ofstream(dir / "tokenizer.json") << "{\"model\": ";
  CHECK_THROWS_WITH(HfTokenizer::from_json_file(dir / "tokenizer.json"), Contains("invalid JSON"));
  std::ofstream(dir / "vocab.json") << "{\"a\": 0, \"b\": 1, \"ab\": 2, \"<s>\": 3, \"</s>\": 4}";
  std::ofstream(dir / "merges.txt") << "#version: 0.2\na b\na b c\n";
  CHECK_THROWS_WITH(HfTokenizer::from_vocab_merges(dir / "vocab.json", dir / "merges.txt", false),
                    Contains("merges.txt") && Contains("line 3"));
}

TEST_CASE("a Unigram text the vocabulary cannot express without unk_id is an error, not garbage", "[tokenizer]") {
  json uni = {{"model", {{"type", "Unigram"}, {"vocab", json::array({json::array({"a", -1.0})})}}}};
  const auto tok = HfTokenizer::from_json_file(write_tokenizer("nounk", uni));
  CHECK(tok->encode_plain("aa").tokens == Strings{"a", "a"});
  CHECK_THROWS_WITH(tok->encode_plain("ab"), Contains("no unk_id"));
  CHECK_THROWS_WITH(tok->encode_plain("a\xff"), Contains("invalid UTF-8"));
}
