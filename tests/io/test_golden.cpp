// moekit's logits against an independent PyTorch implementation of Hugging Face BERT/RoBERTa/
// ELECTRA/DistilBERT (tests/data/golden/reference_bert.py; fixtures made by make_golden.py, see
// its README).
#include <catch2/catch.hpp>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/batching.h"
#include "io/checkpoint.h"
#include "io/wordpiece.h"

using namespace moekit;

namespace {

const std::string kGolden = std::string(MOEKIT_TEST_DATA) + "/golden/";
// fp32 against a float64 reference: the fixtures' own float32 runs land within 6e-7.
constexpr double kAbs = 1e-5, kRel = 1e-4;

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

Batch golden_batch(const nlohmann::json& g) {
  Batch b;
  b.batch = static_cast<int64_t>(g["input_ids"].size());
  b.seq = static_cast<int64_t>(g["input_ids"][0].size());
  for (int64_t s = 0; s < b.batch; ++s)
    for (int64_t t = 0; t < b.seq; ++t) {
      b.ids.push_back(g["input_ids"][s][t].get<int32_t>());
      b.type_ids.push_back(g["token_type_ids"][s][t].get<int32_t>());
      b.mask.push_back(g["attention_mask"][s][t].get<uint8_t>());
    }
  return b;
}

void require_close(float got, double want) {
  INFO("got " << got << " want " << want);
  REQUIRE(std::abs(got - want) <= kAbs + kRel * std::abs(want));
}

// The last layer's hidden states of the real tokens against golden.json's last_hidden (padding
// rows are unused).
void require_last_hidden(const nlohmann::json& g, const Batch& b, const Mat& last) {
  const auto& want = g["last_hidden"];
  REQUIRE(want.size() == static_cast<size_t>(last.size()));
  for (int64_t s = 0; s < b.batch; ++s)
    for (int64_t t = 0; t < b.seq; ++t) {
      if (!b.mask[static_cast<size_t>(s * b.seq + t)]) continue;
      for (Eigen::Index h = 0; h < last.cols(); ++h)
        require_close(last(s * b.seq + t, h), want[static_cast<size_t>((s * b.seq + t) * last.cols() + h)].get<double>());
    }
}

}  // namespace

TEST_CASE("Logits and last hidden states equal the PyTorch reference on every golden fixture", "[io][golden]") {
  for (const char* name : {"bert_tiny", "bert_tiny_variant", "roberta_tiny", "xlmr_tiny", "electra_tiny", "distilbert_tiny"}) {
    INFO(name);
    const auto g = read_json(kGolden + name + "/golden.json");
    io::LoadedModel loaded = io::load_model(kGolden + name);
    CHECK(loaded.model->config.model_type == g["model_type"].get<std::string>());
    CHECK(loaded.warnings.empty());
    Batch b = golden_batch(g);
    Outputs out = loaded.model->forward(b, nullptr, nullptr, true);
    REQUIRE(out.logits.rows() == static_cast<Eigen::Index>(g["logits"].size()));
    for (Eigen::Index r = 0; r < out.logits.rows(); ++r)
      for (Eigen::Index c = 0; c < out.logits.cols(); ++c) require_close(out.logits(r, c), g["logits"][r][c].get<double>());
    require_last_hidden(g, b, out.hidden_states.back());
  }
}

TEST_CASE("A checkpoint without a classifier loads with a new head and the reference encoder output",
          "[io][golden]") {
  const auto g = read_json(kGolden + "bert_tiny_noclf/golden.json");
  io::LoadedModel loaded = io::load_model(kGolden + "bert_tiny_noclf", 7);
  REQUIRE_FALSE(loaded.warnings.empty());
  CHECK_THAT(loaded.warnings.back(), Catch::Contains("no trained head"));
  REQUIRE(loaded.model->classifier.weight.value.norm() > 0);
  Batch b = golden_batch(g);
  Outputs out = loaded.model->forward(b, nullptr, nullptr, true);
  require_last_hidden(g, b, out.hidden_states.back());
}

TEST_CASE("A DistilBertForMaskedLM checkpoint loads with its MLM head and a new classifier", "[io][golden][mlm]") {
  const auto g = read_json(kGolden + "distilbert_tiny_mlm/golden.json");
  io::LoadedModel loaded = io::load_model(kGolden + "distilbert_tiny_mlm", 7);
  BertModel& m = *loaded.model;
  REQUIRE(m.mlm);  // vocab_transform, vocab_layer_norm, vocab_projector.bias
  CHECK(m.mlm->dense.weight.name == "vocab_transform.weight");
  REQUIRE(loaded.warnings.size() == 1);
  CHECK_THAT(loaded.warnings[0], Catch::Contains("no trained head (pre_classifier.weight, pre_classifier.bias, "
                                                 "classifier.weight, classifier.bias)"));
  CHECK(m.classifier.weight.value.norm() > 0);
  CHECK(m.pooler.weight.value.norm() > 0);
  Batch b = golden_batch(g);
  Outputs out = m.forward(b, nullptr, nullptr, true);
  require_last_hidden(g, b, out.hidden_states.back());
  // The MLM logits of sequence 0 (its 12 tokens, no padding), the decoder tied to the embeddings.
  Mat logits;
  m.mlm->forward(out.hidden_states.back().topRows(b.seq), m.embeddings.word, logits, nullptr);
  const auto& want = g["mlm_logits"];
  REQUIRE(static_cast<size_t>(logits.size()) == want.size());
  for (Eigen::Index t = 0; t < logits.rows(); ++t)
    for (Eigen::Index v = 0; v < logits.cols(); ++v)
      require_close(logits(t, v), want[static_cast<size_t>(t * logits.cols() + v)].get<double>());
}

TEST_CASE("The tokenizer reproduces the golden input ids from text", "[io][golden]") {
  for (const char* name : {"bert_tiny", "bert_tiny_variant", "electra_tiny", "distilbert_tiny"}) {
    INFO(name);
    const auto g = read_json(kGolden + name + "/golden.json");
    io::LoadedModel loaded = io::load_model(kGolden + name);
    REQUIRE(loaded.vocab);
    io::WordPieceTokenizer tok(*loaded.vocab, loaded.do_lower_case);
    for (size_t i = 0; i < g["texts"].size(); ++i) {
      const auto& pair = g["texts"][i];
      const std::string a = pair[0].get<std::string>();
      std::string b = pair[1].is_null() ? "" : pair[1].get<std::string>();
      auto enc = tok.encode(a, pair[1].is_null() ? nullptr : &b, 512);
      const int64_t len = g["lengths"][i].get<int64_t>();
      REQUIRE(static_cast<int64_t>(enc.ids.size()) == len);
      for (int64_t t = 0; t < len; ++t) {
        CHECK(enc.ids[t] == g["input_ids"][i][t].get<int32_t>());
        CHECK(enc.type_ids[t] == g["token_type_ids"][i][t].get<int32_t>());
      }
    }
  }
}
