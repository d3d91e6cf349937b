// DistilBERT model directories: an exact round trip that keeps DistilBERT's tensor names and
// config.json keys (so transformers loads what moekit writes), and one-line errors naming the
// file for configs moekit cannot run.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
namespace fs = std::filesystem;

namespace {

const fs::path kDistil = fs::path(MOEKIT_TEST_DATA) / "golden" / "distilbert_tiny";

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

std::set<std::string> tensor_names(const fs::path& file) {
  std::set<std::string> names;
  for (const auto& [name, t] : io::read_safetensors(file).tensors) names.insert(name);
  return names;
}

}  // namespace

TEST_CASE("A DistilBERT checkpoint saves under its own names and keys and loads back exactly", "[io][distilbert]") {
  io::LoadedModel a = io::load_model(kDistil);
  const fs::path d = test::scratch_dir("distil_roundtrip") / "model";
  io::save_model(d, *a.model, &*a.vocab, a.do_lower_case);
  CHECK(tensor_names(d / "model.safetensors") == tensor_names(kDistil / "model.safetensors"));

  const nlohmann::json j = read_json(d / "config.json");
  CHECK(j["model_type"] == "distilbert");
  CHECK(j["architectures"] == nlohmann::json::array({"DistilBertForSequenceClassification"}));
  const nlohmann::json original = read_json(kDistil / "config.json");
  for (const char* key : {"dim", "n_layers", "n_heads", "hidden_dim", "activation", "vocab_size",
                          "max_position_embeddings", "pad_token_id", "sinusoidal_pos_embds", "id2label", "label2id",
                          "dropout", "attention_dropout", "seq_classif_dropout", "initializer_range"}) {
    INFO(key);
    CHECK(j.at(key) == original.at(key));  // floats too: written as the shortest decimal (0.1)
  }
  for (const char* key : {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
                          "type_vocab_size", "layer_norm_eps", "hidden_dropout_prob"}) {
    INFO(key);
    CHECK_FALSE(j.contains(key));  // BERT's keys would contradict DistilBertConfig's attribute map
  }
  CHECK(read_json(d / "tokenizer_config.json")["tokenizer_class"] == "DistilBertTokenizer");

  io::LoadedModel b = io::load_model(d);
  CHECK(b.warnings.empty());
  const BertConfig &ca = a.model->config, &cb = b.model->config;
  CHECK(cb.model_type == ca.model_type);
  CHECK(cb.hidden_size == ca.hidden_size);
  CHECK(cb.num_hidden_layers == ca.num_hidden_layers);
  CHECK(cb.num_attention_heads == ca.num_attention_heads);
  CHECK(cb.intermediate_size == ca.intermediate_size);
  CHECK(cb.hidden_act == ca.hidden_act);
  CHECK(cb.hidden_dropout_prob == ca.hidden_dropout_prob);
  CHECK(cb.attention_probs_dropout_prob == ca.attention_probs_dropout_prob);
  CHECK(cb.seq_classif_dropout == ca.seq_classif_dropout);
  CHECK(cb.type_vocab_size == 0);
  CHECK(cb.labels == ca.labels);
  ParamList pa = a.model->params(), pb = b.model->params();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i]->name);
    REQUIRE(pa[i]->name == pb[i]->name);
    REQUIRE(pa[i]->value == pb[i]->value);
  }
}

TEST_CASE("A DistilBERT MLM checkpoint saves its head under vocab_* and loads back exactly", "[io][distilbert][mlm]") {
  const fs::path mlm = fs::path(MOEKIT_TEST_DATA) / "golden" / "distilbert_tiny_mlm";
  io::LoadedModel a = io::load_model(mlm, 3);
  REQUIRE(a.model->mlm);
  const fs::path d = test::scratch_dir("distil_mlm_roundtrip") / "model";
  io::save_model(d, *a.model, &*a.vocab, a.do_lower_case);
  std::set<std::string> want = tensor_names(mlm / "model.safetensors");
  want.insert({"pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"});  // the new head
  CHECK(tensor_names(d / "model.safetensors") == want);
  io::LoadedModel b = io::load_model(d);
  REQUIRE(b.model->mlm);
  CHECK(b.warnings.empty());
  ParamList pa = a.model->params(), pb = b.model->params();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i]->name);
    REQUIRE(pa[i]->name == pb[i]->name);
    REQUIRE(pa[i]->value == pb[i]->value);
  }
}

TEST_CASE("DistilBERT configs moekit cannot run are refused in one line naming the file and key",
          "[io][distilbert][corrupt]") {
  struct Case {
    std::string what;
    std::function<void(nlohmann::json&)> edit;
    std::string phrase;
  };
  const std::vector<Case> cases = {
      {"sinusoidal", [](nlohmann::json& j) { j["sinusoidal_pos_embds"] = true; }, "sinusoidal_pos_embds: true is not supported"},
      {"heads", [](nlohmann::json& j) { j["n_heads"] = 3; }, "dim 16 is not a multiple of n_heads 3"},
      {"missing dim", [](nlohmann::json& j) { j.erase("dim"); }, "missing required key \"dim\""},
      {"BERT's key", [](nlohmann::json& j) { j["hidden_size"] = j["dim"]; j.erase("dim"); },
       "missing required key \"dim\" (hint: DistilBERT's config names hidden_size \"dim\")"},
      {"layers type", [](nlohmann::json& j) { j["n_layers"] = "two"; }, "n_layers: expected an integer"},
      {"ffn width", [](nlohmann::json& j) { j["hidden_dim"] = 0; }, "hidden_dim: expected a positive integer, got 0"},
      {"activation", [](nlohmann::json& j) { j["activation"] = "swish"; }, "activation: unsupported activation \"swish\""},
      {"dropout", [](nlohmann::json& j) { j["dropout"] = 1.5; }, "dropout: expected a value in [0, 1)"},
      {"head dropout", [](nlohmann::json& j) { j["seq_classif_dropout"] = -0.1; }, "seq_classif_dropout: expected a value"},
      {"sinusoidal type", [](nlohmann::json& j) { j["sinusoidal_pos_embds"] = 1; }, "sinusoidal_pos_embds: expected true or false"},
      {"huge", [](nlohmann::json& j) { j["dim"] = 1 << 20; }, "dim = 1048576 is larger than moekit allows"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    const fs::path d = test::unique_scratch_dir("distil_cfg");
    for (const char* f : {"model.safetensors", "vocab.txt"}) fs::copy_file(kDistil / f, d / f);
    nlohmann::json j = read_json(kDistil / "config.json");
    c.edit(j);
    std::ofstream(d / "config.json") << j.dump();
    try {
      io::load_model(d);
      FAIL("expected an error");
    } catch (const Error& e) {
      const std::string msg = e.what();
      CHECK_THAT(msg, Catch::Contains((d / "config.json").string()) && Catch::Contains(c.phrase));
      CHECK(msg.find('\n') == std::string::npos);
    }
  }
}

TEST_CASE("A DistilBERT config that does not fit its weights names DistilBERT's keys", "[io][distilbert][corrupt]") {
  const fs::path d = test::scratch_dir("distil_fit");
  for (const char* f : {"model.safetensors", "vocab.txt"}) fs::copy_file(kDistil / f, d / f);
  nlohmann::json j = read_json(kDistil / "config.json");
  j["n_heads"] = 8;
  j["dim"] = 32;
  std::ofstream(d / "config.json") << j.dump();
  REQUIRE_THROWS_WITH(io::load_model(d), Catch::Contains((d / "config.json").string()) &&
                                             Catch::Contains("dim = 32, but model.safetensors stores"));
}
