// SQuAD data: both file formats, code-point answer offsets, errors; QA features: the pair frame,
// windows over a long context and the gold span's tokens in each.
#include <catch2/catch.hpp>

#include <fstream>

#include "io/qa_dataset.h"
#include "io/qa_features.h"
#include "io/wordpiece.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
using Catch::Matchers::Contains;

namespace {

std::filesystem::path write(const std::string& name, const std::string& content) {
  const auto path = test::unique_scratch_dir("qa_data") / name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

}  // namespace

TEST_CASE("SQuAD JSON and HF JSONL read alike; answer_start counts code points", "[io][qa]") {
  // "Zoë" is 3 code points, 4 bytes: "Paris" starts at code point 13, byte 14.
  const auto json = write("a.json",
                          "{\"data\": [{\"paragraphs\": [{\"context\": \"Zo\xc3\xab lives in Paris\", \"qas\": [{\"id\": "
                          "\"q1\", \"question\": \"Where?\", \"answers\": [{\"text\": \"Paris\", \"answer_start\": 13}]}, "
                          "{\"id\": \"q2\", \"question\": \"Who?\", \"answers\": [], \"is_impossible\": true}]}]}]}");
  const auto jsonl = write("a.jsonl",
                           "{\"id\": \"q1\", \"question\": \"Where?\", \"context\": \"Zo\xc3\xab lives in Paris\", "
                           "\"answers\": {\"text\": [\"Paris\"], \"answer_start\": [13]}}\n"
                           "{\"id\": \"q2\", \"question\": \"Who?\", \"context\": \"Zo\xc3\xab lives in Paris\", "
                           "\"answers\": {\"text\": [], \"answer_start\": []}}\n");
  for (const auto& path : {json, jsonl}) {
    INFO(path);
    const auto ex = io::read_qa_dataset(path, true);
    REQUIRE(ex.size() == 2);
    CHECK(ex[0].qa_id == "q1");
    CHECK(ex[0].text == "Where?");
    REQUIRE(ex[0].answers.size() == 1);
    CHECK(ex[0].answers[0].begin == 14);
    CHECK(ex[1].answers.empty());
    CHECK(ex[1].qa_labelled);
  }
  CHECK(io::byte_offset_of_code_point("Zo\xc3\xab!", 3) == 4);
  CHECK(io::byte_offset_of_code_point("ab", 3) == std::string::npos);
  CHECK(io::code_points_before("Zo\xc3\xab!", 5) == 4);
}

TEST_CASE("Bad SQuAD files: one error naming the file and the question", "[io][qa]") {
  auto error_of = [](const std::string& name, const std::string& content) {
    try {
      io::read_qa_dataset(write(name, content), true);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("off.json", "{\"data\": [{\"paragraphs\": [{\"context\": \"abc\", \"qas\": [{\"id\": \"x7\", "
                                  "\"question\": \"q\", \"answers\": [{\"text\": \"bc\", \"answer_start\": 0}]}]}]}]}"),
             Contains("off.json: question x7: the answer \"bc\" is not at answer_start 0"));
  CHECK_THAT(error_of("far.jsonl", "{\"question\": \"q\", \"context\": \"abc\", \"answers\": {\"text\": [\"c\"], "
                                   "\"answer_start\": [99]}}\n"),
             Contains("far.jsonl: line 1: the answer \"c\" is not at answer_start 99"));
  CHECK_THAT(error_of("lens.jsonl", "{\"question\": \"q\", \"context\": \"abc\", \"answers\": {\"text\": [\"c\"], "
                                    "\"answer_start\": []}}\n"),
             Contains("equally long"));
  CHECK_THAT(error_of("neg.jsonl", "{\"question\": \"q\", \"context\": \"abc\", \"answers\": [{\"text\": \"c\", "
                                   "\"answer_start\": -1}]}\n"),
             Contains("non-negative integer"));
  CHECK_THAT(error_of("q.jsonl", "{\"question\": 5, \"context\": \"abc\", \"answers\": []}\n"),
             Contains("q.jsonl: line 1: \"question\" must be a string"));
  CHECK_THAT(error_of("x.tsv", "a\tb\n"), Contains("SQuAD .json or .jsonl"));
  CHECK_THAT(error_of("empty.json", "{\"data\": []}"), Contains("no questions"));
}

TEST_CASE("QA features: [CLS] question [SEP] context window [SEP], overlapping windows, gold tokens",
          "[io][qa]") {
  io::WordPieceTokenizer tok(io::Vocab::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "mr", "jo",
                                                     "##hn", "w", "runs", "far"}),
                             true);
  io::Example e;
  e.qa = true;
  e.has_pair = true;
  e.text = "who";
  e.text_pair = "w w mr John runs far w w";
  e.answers = {{"John", 7}};
  e.qa_labelled = true;
  // Whole: [CLS] who [SEP] w w mr jo ##hn runs far w w [SEP] = 13 tokens.
  auto one = io::encode_qa_features(tok, {e}, 16);
  REQUIRE(one.size() == 1);
  CHECK(one[0].ids == std::vector<int32_t>{2, 5, 3, 9, 9, 6, 7, 8, 10, 11, 9, 9, 3});
  CHECK(one[0].type_ids == std::vector<int32_t>{0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  CHECK(one[0].token_word == std::vector<int32_t>{-1, -1, -1, 0, 1, 2, 3, 3, 4, 5, 6, 7, -1});
  CHECK(one[0].start_position == 6);  // "jo"
  CHECK(one[0].end_position == 7);    // "##hn": the last token of the answer's word
  // max_len 8: 4 context tokens a window, overlap 2: windows at 0, 2, 4, 6 of the 9 context tokens.
  auto windows = io::encode_qa_features(tok, {e}, 8);
  REQUIRE(windows.size() == 4);
  CHECK(windows[0].start_position == 0);  // "jo ##hn" at 3-4 is not inside tokens 0-3
  CHECK(windows[1].start_position == 4);  // tokens 2-5: jo at 3 -> 3 + 1
  CHECK(windows[1].end_position == 5);
  CHECK(windows[3].token_word.back() == -1);
  for (const auto& w : windows) CHECK(w.qa_example == 0);
  CHECK(io::describe_count(windows) == "4 windows of 1 question");
  CHECK(io::describe_count(io::encode_qa_features(tok, {e, e}, 16)) == "2 windows of 2 questions");
  CHECK_THROWS_WITH(io::encode_qa_features(tok, {e}, 4), Contains("leaves no room for the context"));
  e.answers.clear();  // unanswerable: every window points at [CLS]
  for (const auto& w : io::encode_qa_features(tok, {e}, 8)) CHECK(w.end_position == 0);
}
