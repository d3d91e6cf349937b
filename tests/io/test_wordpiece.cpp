// WordPiece tokenizer against BERT's behaviour. Cases marked "HF test" are copied from
// transformers' tests/models/bert/test_tokenization_bert.py; the rest follow from tokenization.py.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "io/wordpiece.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using moekit::Error;
using moekit::io::Vocab;
using moekit::io::WordPieceTokenizer;
using Tokens = std::vector<std::string>;
using namespace std::string_literals;

namespace {

namespace fs = std::filesystem;

struct ScratchDir {
  fs::path path = moekit::test::unique_scratch_dir("wordpiece");
};

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// The vocabulary of HF's test_full_tokenizer plus what the other cases need.
Vocab test_vocab() {
  return Vocab::from_tokens({"[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "want", "##want", "##ed",
                             "wa", "un", "runn", "##ing", ",", "low", "lowest", "hello", "world", "!",
                             "?", "how", "are", "you", "##aff", "##able", "ah", "zz", "\u535A",
                             "\u63A8", "HeLLo", "Are", "yoU", "H\u00E9ll\u00F2", "a", "##a", "[", "]",
                             "sep", "\u3042\u3044\u3046", "\u304B", "\u3042", "##\u3042"});
}

}  // namespace

TEST_CASE("WordPiece reproduces HF's full-tokenizer example with ids", "[io]") {
  WordPieceTokenizer tok(test_vocab(), true);
  Tokens tokens = tok.tokenize("UNwant\u00E9d,running");  // HF test_full_tokenizer
  CHECK(tokens == Tokens{"un", "##want", "##ed", ",", "runn", "##ing"});
  CHECK(tok.to_ids(tokens) == std::vector<int32_t>{9, 6, 7, 12, 10, 11});
}

TEST_CASE("Basic tokenizer lower-cases, strips accents and splits punctuation", "[io]") {
  WordPieceTokenizer tok(test_vocab(), true);
  CHECK(tok.tokenize(" \tHeLLo!how  \n Are yoU?  ") ==
        Tokens{"hello", "!", "how", "are", "you", "?"});  // HF test_basic_tokenizer_lower
  CHECK(tok.tokenize("H\u00E9llo") == Tokens{"hello"});
  CHECK(tok.tokenize("Hello, World!") == Tokens{"hello", ",", "world", "!"});
  CHECK(tok.tokenize("H\u00E9ll\u00F2") == Tokens{"hello"});
  CHECK(tok.tokenize("unaffable") == Tokens{"un", "##aff", "##able"});
}

TEST_CASE("Cased tokenizer keeps case and accents, composing to NFC first", "[io]") {
  WordPieceTokenizer tok(test_vocab(), false);
  CHECK(tok.tokenize(" \tHeLLo!how  \n Are yoU?  ") ==
        Tokens{"HeLLo", "!", "how", "Are", "yoU", "?"});  // HF test_basic_tokenizer_no_lower
  CHECK(tok.tokenize("H\u00E9ll\u00F2") == Tokens{"H\u00E9ll\u00F2"});
  CHECK(tok.tokenize("He\u0301llo\u0300") == Tokens{"H\u00E9ll\u00F2"});  // decomposed input
  CHECK(tok.tokenize("Hello") == Tokens{"[UNK]"});  // "Hello" is not in the vocabulary
}

TEST_CASE("CJK ideographs become single tokens, kana does not", "[io]") {
  WordPieceTokenizer tok(test_vocab(), true);
  CHECK(tok.tokenize("ah\u535A\u63A8zz") == Tokens{"ah", "\u535A", "\u63A8", "zz"});  // HF test_chinese
  CHECK(tok.tokenize("\u3042\u3044\u3046") == Tokens{"\u3042\u3044\u3046"});
  CHECK(tok.tokenize("\u304C") == Tokens{"\u304B"});  // uncased BERT strips the dakuten (Mn after NFD)
}

TEST_CASE("Control and format characters are dropped, whitespace variants split", "[io]") {
  WordPieceTokenizer tok(test_vocab(), true);
  CHECK(tok.tokenize("\xC2\xAD").empty());  // U+00AD soft hyphen (Cf); HF test_clean_text
  CHECK(tok.tokenize("hel\x01lo\0 wo\xE2\x80\x8Brld\xEF\xBF\xBD"s) ==
        Tokens{"hello", "world"});  // \x01 (Cc), NUL, U+200B (Cf), U+FFFD
  CHECK(tok.tokenize("hello\xC2\xA0world\xE3\x80\x80you\xE2\x80\xA8" "are") ==
        Tokens{"hello", "world", "you", "are"});  // U+00A0, U+3000 (Zs), U+2028 (split() whitespace)
  CHECK(tok.tokenize("hello\x0bworld") == Tokens{"[UNK]"});  // \v is Cc: dropped, not a space
  CHECK(tok.tokenize("").empty());
}

TEST_CASE("WordPiece: greedy longest match, unmatchable word and long word give [UNK]", "[io]") {
  WordPieceTokenizer tok(test_vocab(), true);
  CHECK(tok.tokenize("unwanted running") == Tokens{"un", "##want", "##ed", "runn", "##ing"});
  CHECK(tok.tokenize("unwantedX running") == Tokens{"[UNK]", "runn", "##ing"});  // HF wordpiece test
  Tokens hundred = tok.tokenize(std::string(100, 'a'));
  REQUIRE(hundred.size() == 100);
  CHECK(hundred[0] == "a");
  CHECK(hundred[99] == "##a");
  CHECK(tok.tokenize(std::string(101, 'a')) == Tokens{"[UNK]"});
  std::string kana;  // the limit counts characters (code points), not bytes
  for (int i = 0; i < 100; ++i) kana += "\u3042";
  CHECK(tok.tokenize(kana).size() == 100);
  CHECK(tok.tokenize(kana + "\u3042") == Tokens{"[UNK]"});
}

TEST_CASE("Special tokens in the text stay whole, case-sensitively", "[io]") {
  WordPieceTokenizer lower(test_vocab(), true);
  CHECK(lower.tokenize("hello [SEP] world") == Tokens{"hello", "[SEP]", "world"});
  CHECK(lower.tokenize("Hello[SEP]world[MASK]") == Tokens{"hello", "[SEP]", "world", "[MASK]"});
  CHECK(lower.tokenize("[sep]") == Tokens{"[", "sep", "]"});
  WordPieceTokenizer cased(test_vocab(), false);
  CHECK(cased.tokenize(" \tHeLLo!how  \n Are yoU? [UNK]") ==
        Tokens{"HeLLo", "!", "how", "Are", "yoU", "?", "[UNK]"});  // HF never_split test
}

TEST_CASE("Encode builds [CLS] A [SEP] B [SEP] with type ids", "[io]") {
  WordPieceTokenizer tok(test_vocab(), true);
  const int cls = tok.vocab().id("[CLS]"), sep = tok.vocab().id("[SEP]");
  const int hello = tok.vocab().id("hello"), world = tok.vocab().id("world");
  auto single = tok.encode("hello world", nullptr, 16);
  CHECK(single.ids == std::vector<int32_t>{cls, hello, world, sep});
  CHECK(single.type_ids == std::vector<int32_t>{0, 0, 0, 0});
  std::string pair = "world";
  auto both = tok.encode("hello", &pair, 16);
  CHECK(both.ids == std::vector<int32_t>{cls, hello, sep, world, sep});
  CHECK(both.type_ids == std::vector<int32_t>{0, 0, 0, 1, 1});
  std::string empty;
  CHECK(tok.encode("hello", &empty, 16).ids == std::vector<int32_t>{cls, hello, sep, sep});
  CHECK(tok.to_ids({"hello", "nonsense"}) == std::vector<int32_t>{hello, tok.vocab().id("[UNK]")});
}

TEST_CASE("Encode truncates longest-first, ties from the pair", "[io]") {
  WordPieceTokenizer tok(test_vocab(), true);
  const int a = tok.vocab().id("a"), zz = tok.vocab().id("zz");
  auto count = [](const std::vector<int32_t>& ids, int id) {
    return std::count(ids.begin(), ids.end(), id);
  };
  std::string three = "zz zz zz";
  auto enc = tok.encode("a a a a a", &three, 9);  // 5 + 3 + 3 = 11 -> remove 2, both from A
  CHECK(enc.ids.size() == 9);
  CHECK(count(enc.ids, a) == 3);
  CHECK(count(enc.ids, zz) == 3);
  enc = tok.encode("a a a", &three, 8);  // 3 + 3 + 3 = 9 -> tie: remove from the pair
  CHECK(count(enc.ids, a) == 3);
  CHECK(count(enc.ids, zz) == 2);
  CHECK(enc.type_ids == std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1});
  enc = tok.encode("a a a", &three, 6);  // remove 3: B, A, B
  CHECK(count(enc.ids, a) == 2);
  CHECK(count(enc.ids, zz) == 1);
  enc = tok.encode("a a a a a", nullptr, 4);
  CHECK(count(enc.ids, a) == 2);
  CHECK(enc.ids.size() == 4);
  CHECK(tok.encode("a", &three, 3).ids.size() == 3);
  CHECK_THROWS_WITH(tok.encode("a", &three, 2), Catch::Contains("max_len 2"));
  CHECK_THROWS_WITH(tok.encode("a", nullptr, 1), Catch::Contains("max_len 1"));
}

TEST_CASE("Tokenizer refuses a vocabulary without [CLS]/[SEP]/[UNK] and invalid UTF-8", "[io]") {
  CHECK_THROWS_WITH(WordPieceTokenizer(Vocab::from_tokens({"[UNK]", "[SEP]", "a"}), true),
                    Catch::Contains("no [CLS]"));
  CHECK_THROWS_WITH(WordPieceTokenizer(Vocab::from_tokens({"[CLS]", "[SEP]", "a"}), true),
                    Catch::Contains("no [UNK]"));
  CHECK_THROWS_AS(WordPieceTokenizer(Vocab::from_tokens({"[CLS]", "[UNK]"}), true), Error);
  WordPieceTokenizer tok(test_vocab(), true);
  CHECK_THROWS_WITH(tok.tokenize("ab\xC3"), Catch::Contains("invalid UTF-8"));
}

TEST_CASE("Vocab loads line = id, round-trips, and rejects bad files with the line", "[io]") {
  ScratchDir dir;
  const fs::path file = dir.path / "vocab.txt";
  write_file(file, "[PAD]\r\n[UNK]\nhello world\n##x");  // CRLF, a space inside, no final newline
  Vocab v = Vocab::load(file);
  REQUIRE(v.size() == 4);
  CHECK(v.tokens[2] == "hello world");
  CHECK(v.id("[UNK]") == 1);
  CHECK(v.id("##x") == 3);
  CHECK(v.id("absent") == -1);

  const fs::path copy = dir.path / "copy.txt";
  v.save(copy);
  Vocab w = Vocab::load(copy);
  CHECK(w.tokens == v.tokens);
  std::ostringstream out;
  v.save(out);
  CHECK(out.str() == "[PAD]\n[UNK]\nhello world\n##x\n");

  write_file(file, "a\nb\na\n");
  CHECK_THROWS_WITH(Vocab::load(file), Catch::Contains("vocab.txt") && Catch::Contains("line 3") &&
                                           Catch::Contains("duplicate token 'a'"));
  write_file(file, "");
  CHECK_THROWS_WITH(Vocab::load(file), Catch::Contains("vocab.txt") && Catch::Contains("empty"));
  write_file(file, "a\nb\xFF\n");
  CHECK_THROWS_WITH(Vocab::load(file), Catch::Contains("line 2") && Catch::Contains("UTF-8"));
  CHECK_THROWS_WITH(Vocab::load(dir.path / "missing.txt"), Catch::Contains("missing.txt"));
  CHECK_THROWS_WITH(Vocab::from_tokens({"x", "y", "x"}), Catch::Contains("duplicate token 'x'"));
  CHECK_THROWS_AS(Vocab::from_tokens({}), Error);
}

TEST_CASE("read_do_lower_case follows tokenizer_config.json, default true", "[io]") {
  ScratchDir dir;
  const fs::path file = dir.path / "tokenizer_config.json";
  CHECK(moekit::io::read_do_lower_case(dir.path));  // no file
  write_file(file, R"({"do_lower_case": false, "model_max_length": 512})");
  CHECK_FALSE(moekit::io::read_do_lower_case(dir.path));
  write_file(file, R"({"model_max_length": 512})");
  CHECK(moekit::io::read_do_lower_case(dir.path));
  write_file(file, R"({"do_lower_case": fals)");
  CHECK_THROWS_WITH(moekit::io::read_do_lower_case(dir.path),
                    Catch::Contains("tokenizer_config.json") && Catch::Contains("invalid JSON"));
  write_file(file, R"({"do_lower_case": "yes"})");
  CHECK_THROWS_WITH(moekit::io::read_do_lower_case(dir.path),
                    Catch::Contains("tokenizer_config.json") && Catch::Contains("expected a boolean"));
}
