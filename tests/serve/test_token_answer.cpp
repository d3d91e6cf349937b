// A token model's /predict answer: per-word tags and entities with code-point offsets.
#include <catch2/catch.hpp>

#include "serve/token_answer.h"

using namespace moekit;

TEST_CASE("Token answers give strict IOB2 entities with code-point offsets into the text", "[serve][token]") {
  BertConfig c;
  c.task = Task::token_classification;
  c.labels = {"B-PER", "I-PER", "B-LOC", "O"};
  const std::string text = "Zo\xc3\xab  Smith in Paris";  // Zoë: 3 code points, 4 bytes
  const auto words = io::split_words(text);
  REQUIRE(words.size() == 4);
  // [CLS] zoe smith in paris [SEP]; word w's first sub-token at 1 + w.
  Mat logits = Mat::Zero(6, 4);
  logits(1, 0) = 4;  // B-PER
  logits(2, 1) = 4;  // I-PER
  logits(3, 3) = 4;  // O
  logits(4, 2) = 4;  // B-LOC
  const auto out = serve::token_answer(c, text, words, {1, 2, 3, 4}, logits);
  CHECK(out["tags"] == nlohmann::json({"B-PER", "I-PER", "O", "B-LOC"}));
  REQUIRE(out["entities"].size() == 2);
  const auto& per = out["entities"][0];
  CHECK(per["entity_group"] == "PER");
  CHECK(per["word"] == "Zo\xc3\xab  Smith");
  CHECK(per["start"] == 0);
  CHECK(per["end"] == 10);  // 3 + 2 spaces + 5
  CHECK(per["score"].get<double>() == Approx(std::exp(4.0) / (std::exp(4.0) + 3)));
  CHECK(out["entities"][1]["start"] == 14);
  CHECK(out["entities"][1]["end"] == 19);
  // A truncated word (no token) has null tag and score and ends the entity before it.
  const auto cut = serve::token_answer(c, text, words, {1, -1, -1, -1}, logits);
  CHECK(cut["tags"][1].is_null());
  REQUIRE(cut["entities"].size() == 1);
  CHECK(cut["entities"][0]["word"] == "Zo\xc3\xab");
}
