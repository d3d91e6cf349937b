// Token-classification data: whitespace words with byte offsets, the JSONL and CoNLL readers and
// their errors, tag collection, and word-by-word encoding (first sub-token carries the tag).
#include <catch2/catch.hpp>

#include <fstream>

#include "io/batching.h"
#include "io/token_dataset.h"
#include "io/wordpiece.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
using Catch::Matchers::Contains;

namespace {

std::filesystem::path write(const std::string& name, const std::string& content) {
  const auto path = test::unique_scratch_dir("token_data") / name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

const std::vector<std::string> kTags{"B-LOC", "B-PER", "I-PER", "O"};

}  // namespace

TEST_CASE("split_words gives each whitespace-separated word with its byte range", "[io][token]") {
  const auto w = io::split_words("  Zo\xc3\xab\tlives\n in  Paris ");
  REQUIRE(w.size() == 4);
  CHECK(w[0].text == "Zo\xc3\xab");
  CHECK(w[0].begin == 2);
  CHECK(w[0].end == 6);  // 4 bytes: the e-diaeresis is two
  CHECK(w[1].text == "lives");
  CHECK(w[1].begin == 7);
  CHECK(w[3].text == "Paris");
  CHECK(w[3].end == 23);
  CHECK(io::split_words(" \t ").empty());
}

TEST_CASE("JSONL and CoNLL give the same sentences", "[io][token]") {
  const auto jsonl = write("a.jsonl",
                           "{\"tokens\": [\"John\", \"Smith\", \"visits\", \"Rome\"], \"tags\": [\"B-PER\", \"I-PER\", "
                           "\"O\", \"B-LOC\"]}\n{\"tokens\": [\"hi\"], \"ner_tags\": [3]}\n");
  const auto conll = write("a.conll",
                           "-DOCSTART- -X- -X- O\n\nJohn NNP B-NP B-PER\nSmith NNP I-NP I-PER\nvisits VBZ B-VP O\n"
                           "Rome NNP B-NP B-LOC\n\n\nhi UH O O\n");
  for (const auto& path : {jsonl, conll}) {
    INFO(path);
    const auto ex = io::read_token_dataset(path, kTags, true);
    REQUIRE(ex.size() == 2);
    CHECK(ex[0].words == std::vector<std::string>{"John", "Smith", "visits", "Rome"});
    CHECK(ex[0].word_tags == std::vector<int>{1, 2, 3, 0});
    CHECK(ex[0].text == "John Smith visits Rome");
    CHECK(ex[1].word_tags == std::vector<int>{3});
  }
  CHECK(io::collect_tags(conll) == std::vector<std::string>{"B-LOC", "B-PER", "I-PER", "O"});
  const auto unlabelled = io::read_token_dataset(write("u.txt", "one two\n\nthree\n"), kTags, false);
  REQUIRE(unlabelled.size() == 2);
  CHECK(unlabelled[0].words.size() == 2);
  CHECK(unlabelled[0].word_tags.empty());
}

TEST_CASE("A CoNLL line of other whitespace (vertical tab, form feed) ends a sentence like a blank one",
          "[io][token]") {
  // Found by fuzz_dataset: a line of only "\v" is not blank to the line reader but has no words.
  const auto path = write("vt.conll", "a O\n\v\nb O\n\f \r\nc O\n");
  const auto ex = io::read_token_dataset(path, kTags, true);
  REQUIRE(ex.size() == 3);
  CHECK(ex[2].words == std::vector<std::string>{"c"});
  CHECK_THROWS_WITH(io::read_token_dataset(write("only_vt.conll", "\v\n"), kTags, true),
                    Contains("only_vt.conll: empty dataset"));
}

TEST_CASE("Bad token data: one error naming the file, line and problem", "[io][token]") {
  auto error_of = [](const std::string& name, const std::string& content, bool collect = false) {
    const auto path = write(name, content);
    try {
      if (collect)
        io::collect_tags(path);
      else
        io::read_token_dataset(path, kTags, true);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("count.jsonl", "{\"tokens\": [\"a\", \"b\"], \"tags\": [\"O\"]}\n"),
             Contains("count.jsonl: line 1: 1 tags for 2 tokens"));
  CHECK_THAT(error_of("notlist.jsonl", "{\"tokens\": \"a b\", \"tags\": []}\n"), Contains("notlist.jsonl: line 1"));
  CHECK_THAT(error_of("unknown.conll", "a O\nb B-ORG\n"), Contains("unknown.conll: line 2: unknown tag 'B-ORG'"));
  CHECK_THAT(error_of("index.jsonl", "{\"tokens\": [\"a\"], \"tags\": [4]}\n"), Contains("line 1: unknown tag '4'"));
  CHECK_THAT(error_of("mixed.conll", "a O\nb\n"), Contains("mixed.conll: line 2: a word without a tag"));
  CHECK_THAT(error_of("untagged.conll", "a\nb\n"), Contains("untagged.conll: line 1: missing tags"));
  CHECK_THAT(error_of("scheme.conll", "a O\nb PER\n", true), Contains("scheme.conll: line 2: tag 'PER' is not IOB2"));
  CHECK_THAT(error_of("indices.jsonl", "{\"tokens\": [\"a\"], \"tags\": [0]}\n", true),
             Contains("tag 0 is an index; a new model needs tag names"));
  CHECK(io::is_iob2_tag("B-MISC"));
  CHECK_FALSE(io::is_iob2_tag("B-"));
  CHECK_FALSE(io::is_iob2_tag("E-PER"));
}

TEST_CASE("Words are encoded one by one; the first sub-token carries the tag, truncation drops whole words",
          "[io][token]") {
  io::WordPieceTokenizer tok(
      io::Vocab::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "john", "play", "##ing", "rome", "."}),
      true);
  io::Example e;
  e.words = {"John", "playing", "\x01", "Rome", "."};  // "\x01": a control character, no token
  e.word_tags = {1, 3, 3, 0, 3};
  const auto enc = io::encode_examples(tok, {e}, 16);
  REQUIRE(enc.size() == 1);
  CHECK(enc[0].ids == std::vector<int32_t>{2, 5, 6, 7, 8, 9, 3});
  CHECK(enc[0].word_starts == std::vector<int32_t>{1, 2, -1, 4, 5});
  const int x = Batch::kIgnoreToken;
  CHECK(enc[0].token_labels == std::vector<int>{x, 1, 3, x, 0, 3, x});
  // Room for 3 word pieces between [CLS] and [SEP]: "john play ##ing"; "rome" no longer fits.
  const auto cut = io::encode_examples(tok, {e}, 5);
  CHECK(cut[0].ids == std::vector<int32_t>{2, 5, 6, 7, 3});
  CHECK(cut[0].word_starts == std::vector<int32_t>{1, 2, -1, -1, -1});
  const Batch b = io::make_batch(enc, {0}, 0);
  CHECK(b.token_labels == enc[0].token_labels);
  CHECK_THROWS_WITH(io::encode_examples(tok, {e}, 2), Contains("leaves no room for words"));
}
