// The masked-LM head through Hugging Face's names: a moekit round trip, and a checkpoint laid
// out as bert-base-uncased's (legacy gamma/beta, the tied decoder.weight and decoder.bias
// aliases, the NSP head, no classifier).
#include <catch2/catch.hpp>
#include <fstream>

#include "io/checkpoint.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<BertModel> model_with_head(uint64_t seed) {
  auto m = std::make_unique<BertModel>(test::tiny_config());
  test::randomize(*m, seed, 0.3);
  Rng rng(seed + 1);
  m->add_mlm_head(rng);
  for (Param* p : m->params())
    if (p->name.rfind("cls.", 0) == 0)
      for (Eigen::Index i = 0; i < p->value.size(); ++i) p->value.data()[i] = static_cast<float>(rng.normal());
  return m;
}

void require_same(BertModel& a, BertModel& b) {
  ParamList pa = a.params(), pb = b.params();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i]->name);
    REQUIRE(pa[i]->name == pb[i]->name);
    REQUIRE(pa[i]->value == pb[i]->value);
  }
}

}  // namespace

TEST_CASE("An MLM head saves under cls.predictions.* and loads back exactly", "[io][mlm]") {
  const fs::path dir = test::scratch_dir("mlm_roundtrip");
  auto m = model_with_head(70);
  io::save_model(dir / "m", *m, nullptr, true);
  const auto file = io::read_safetensors(dir / "m" / "model.safetensors");
  for (const char* name : {"cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
                           "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
                           "cls.predictions.bias"})
    CHECK(file.tensors.count(name) == 1);
  CHECK(file.tensors.count("cls.predictions.decoder.weight") == 0);  // tied: stored once, as the embeddings
  CHECK(file.tensors.at("cls.predictions.bias").shape == std::vector<int64_t>{m->config.vocab_size});
  io::LoadedModel back = io::load_model(dir / "m");
  REQUIRE(back.model->mlm);
  require_same(*m, *back.model);
  CHECK(back.warnings.empty());
}

TEST_CASE("A bert-base-uncased style checkpoint loads with its MLM head", "[io][mlm]") {
  const fs::path dir = test::scratch_dir("mlm_hf");
  auto m = model_with_head(71);
  auto tensors = io::model_tensors(*m);
  // HF's layout: legacy LayerNorm names, the decoder aliases, the NSP head, no task classifier.
  std::map<std::string, io::Tensor> hf;
  for (auto& [name, t] : tensors) {
    if (name.rfind("classifier", 0) == 0) continue;
    std::string n = name;
    if (n.find("LayerNorm.weight") != std::string::npos) n.replace(n.size() - 6, 6, "gamma");
    else if (n.find("LayerNorm.bias") != std::string::npos) n.replace(n.size() - 4, 4, "beta");
    hf[n] = t;
  }
  hf["cls.predictions.decoder.weight"] = tensors.at("bert.embeddings.word_embeddings.weight");
  hf["cls.predictions.decoder.bias"] = tensors.at("cls.predictions.bias");
  hf["cls.seq_relationship.weight"] = io::mat_to_tensor(Mat::Ones(2, m->config.hidden_size), io::DType::F32, false);
  hf["cls.seq_relationship.bias"] = io::mat_to_tensor(Mat::Zero(1, 2), io::DType::F32, true);
  fs::create_directories(dir / "hf");
  std::ofstream(dir / "hf" / "config.json") << io::hf_config_json(m->config).dump(2);
  io::write_safetensors(dir / "hf" / "model.safetensors", hf, {{"format", "pt"}});
  io::LoadedModel back = io::load_model(dir / "hf", 5);
  REQUIRE(back.model->mlm);
  for (Param* p : m->params()) {
    if (p->name.rfind("classifier", 0) == 0) continue;
    INFO(p->name);
    for (Param* q : back.model->params())
      if (q->name == p->name) REQUIRE(q->value == p->value);
  }
  // The missing classifier gets a new head (the usual warning); nothing else is reported.
  REQUIRE(back.warnings.size() == 1);
  CHECK(back.warnings[0].find("no trained head") != std::string::npos);

  // An untied decoder is reported; a misshapen one refused.
  hf["cls.predictions.decoder.weight"] = io::mat_to_tensor(
      Mat::Ones(m->config.vocab_size, m->config.hidden_size), io::DType::F32, false);
  io::write_safetensors(dir / "hf" / "model.safetensors", hf, {{"format", "pt"}});
  CHECK(io::load_model(dir / "hf", 5).warnings.size() == 2);
  hf["cls.predictions.decoder.weight"] = io::mat_to_tensor(Mat::Ones(3, m->config.hidden_size), io::DType::F32, false);
  io::write_safetensors(dir / "hf" / "model.safetensors", hf, {{"format", "pt"}});
  REQUIRE_THROWS_WITH(io::load_model(dir / "hf", 5), Catch::Contains("cls.predictions.decoder.weight: expected"));
}
