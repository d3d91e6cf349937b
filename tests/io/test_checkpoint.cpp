// Model directories: exact round trip, and every malformed config or weight file gets its error.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <fstream>

#include "io/checkpoint.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
namespace fs = std::filesystem;

namespace {

const fs::path kTiny = fs::path(MOEKIT_TEST_DATA) / "golden" / "bert_tiny";

fs::path fresh_dir(const std::string& name) { return test::scratch_dir("ckpt_" + name); }

fs::path copy_tiny(const std::string& name) {
  fs::path d = fresh_dir(name);
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt"}) fs::copy_file(kTiny / f, d / f);
  return d;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

nlohmann::json tiny_config_json() {
  std::ifstream in(kTiny / "config.json");
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("save_model then load_model reproduces every parameter exactly", "[io]") {
  io::LoadedModel a = io::load_model(kTiny);
  fs::path d = fresh_dir("roundtrip") / "model";
  io::save_model(d, *a.model, &*a.vocab, a.do_lower_case);
  io::LoadedModel b = io::load_model(d);
  ParamList pa = a.model->params(), pb = b.model->params();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i]->name);
    REQUIRE(pa[i]->name == pb[i]->name);
    REQUIRE(pa[i]->value == pb[i]->value);
  }
  CHECK(b.model->config.labels == a.model->config.labels);
  CHECK(b.vocab->tokens == a.vocab->tokens);
  // No temporary directories are left next to the model.
  int entries = 0;
  for (auto& e : fs::directory_iterator(d.parent_path())) entries += e.path().filename() != "model";
  CHECK(entries == 0);
}

TEST_CASE("Malformed config.json files are refused with the key named", "[io][corrupt]") {
  struct Case {
    std::string what;
    std::function<void(nlohmann::json&)> edit;
    std::string phrase;
  };
  std::vector<Case> cases = {
      {"missing key", [](nlohmann::json& j) { j.erase("hidden_size"); }, "missing required key \"hidden_size\""},
      {"wrong type", [](nlohmann::json& j) { j["num_hidden_layers"] = "two"; }, "num_hidden_layers: expected an integer"},
      {"negative", [](nlohmann::json& j) { j["intermediate_size"] = -5; }, "intermediate_size: expected a positive"},
      {"heads", [](nlohmann::json& j) { j["num_attention_heads"] = 5; }, "not a multiple of num_attention_heads"},
      {"model type", [](nlohmann::json& j) { j["model_type"] = "gpt2"; }, "model_type \"gpt2\" is not supported"},
      {"activation", [](nlohmann::json& j) { j["hidden_act"] = "swish"; }, "unsupported activation"},
      {"id2label", [](nlohmann::json& j) { j["id2label"] = {{"0", "a"}, {"5", "b"}}; }, "id2label"},
      {"num_labels", [](nlohmann::json& j) { j["num_labels"] = 7; }, "disagrees with id2label"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    nlohmann::json j = tiny_config_json();
    c.edit(j);
    fs::path d = copy_tiny("cfg");
    write(d / "config.json", j.dump());
    REQUIRE_THROWS_WITH(io::load_model(d), Catch::Contains((d / "config.json").string()) && Catch::Contains(c.phrase));
  }
  fs::path d = copy_tiny("cfgjson");
  write(d / "config.json", "{\"hidden_size\": 16,");
  REQUIRE_THROWS_WITH(io::load_model(d), Catch::Contains("config.json") && Catch::Contains("malformed JSON"));
}

TEST_CASE("Missing and misshapen tensors are all listed in one error", "[io][corrupt]") {
  fs::path d = copy_tiny("bind");
  io::SafetensorsFile f = io::read_safetensors(d / "model.safetensors");
  f.tensors.erase("bert.encoder.layer.1.output.dense.weight");
  f.tensors.erase("bert.embeddings.LayerNorm.bias");
  f.tensors["bert.pooler.dense.weight"].shape = {8, 32};  // same bytes, wrong shape
  io::write_safetensors(d / "model.safetensors", f.tensors);
  try {
    io::load_model(d);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("model.safetensors"));
    CHECK_THAT(msg, Catch::Contains("3 problem(s)"));
    CHECK_THAT(msg, Catch::Contains("missing tensor bert.encoder.layer.1.output.dense.weight"));
    CHECK_THAT(msg, Catch::Contains("missing tensor bert.embeddings.LayerNorm.bias"));
    CHECK_THAT(msg, Catch::Contains("bert.pooler.dense.weight: expected shape [16, 16], got [8, 32]"));
  }
}

TEST_CASE("A model directory without weights or config says which file is missing", "[io][corrupt]") {
  fs::path d = copy_tiny("missing");
  fs::remove(d / "model.safetensors");
  REQUIRE_THROWS_WITH(io::load_model(d), Catch::Contains("model.safetensors") && Catch::Contains("missing"));
  fs::remove(d / "config.json");
  REQUIRE_THROWS_WITH(io::load_model(d), Catch::Contains("config.json") && Catch::Contains("missing"));
  REQUIRE_THROWS_WITH(io::load_model(d / "nope"), Catch::Contains("no such model directory"));
}

TEST_CASE("A vocabulary larger than the embedding table is refused", "[io][corrupt]") {
  fs::path d = copy_tiny("vocab");
  std::ofstream out(d / "vocab.txt", std::ios::app);
  for (int i = 0; i < 10; ++i) out << "extra" << i << "\n";
  out.close();
  REQUIRE_THROWS_WITH(io::load_model(d), Catch::Contains("vocab.txt") && Catch::Contains("vocab_size is 64"));
}
