// Go-Wider checkpoints: a shared MoE FFN (and attention) is stored once, under its owner layer's
// names; each layer's LayerNorms are stored; config "moe" keeps norm and the groups; the model
// loads back exactly, and a file that lacks a shared block names what is missing.
#include <catch2/catch.hpp>

#include "io/checkpoint.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;
namespace fs = std::filesystem;

namespace {

// 4 layers, all MoE with per-layer LayerNorms; groups {0,1} and {2,3}.
std::unique_ptr<BertModel> shared_model(bool share_attention) {
  BertConfig c = tiny_config();
  c.num_hidden_layers = 4;
  MoeConfig m;
  m.n_experts = 2;
  m.expert_size = 8;
  m.router = "gate";
  m.top_k = 2;
  m.layers = {0, 1, 2, 3};
  m.norm = "layer";
  m.share_groups = {{0, 1}, {2, 3}};
  m.share_attention = share_attention;
  c.moe = m;
  auto model = std::make_unique<BertModel>(c);
  randomize(*model, 5, 0.3);
  return model;
}

}  // namespace

TEST_CASE("A shared model stores each shared tensor once and loads back exactly", "[io][sharing]") {
  for (bool share_attention : {false, true}) {
    INFO("share_attention " << share_attention);
    auto a = shared_model(share_attention);
    const fs::path d = scratch_dir(share_attention ? "shared_attention" : "shared_moe");
    io::save_model(d, *a, nullptr, true);

    const io::SafetensorsFile f = io::read_safetensors(d / "model.safetensors");
    CHECK(f.tensors.size() == a->params().size() + a->index_params().size());
    for (int layer : {1, 3}) {
      const std::string p = "bert.encoder.layer." + std::to_string(layer) + ".";
      for (const auto& [name, t] : f.tensors) {
        INFO(name);
        CHECK(name.rfind(p + "moe.", 0) != 0);
        if (share_attention) CHECK(name.rfind(p + "attention.self.", 0) != 0);
      }
      CHECK(f.tensors.count(p + "output.LayerNorm.weight") == 1);
      CHECK(f.tensors.count(p + "attention.output.LayerNorm.bias") == 1);
      CHECK(f.tensors.count(p + "attention.self.query.weight") == (share_attention ? 0u : 1u));
    }
    CHECK(f.tensors.count("bert.encoder.layer.2.moe.experts.1.output.dense.weight") == 1);
    CHECK(f.tensors.count("bert.encoder.layer.2.moe.experts.1.output.LayerNorm.weight") == 0);  // the layer has it

    io::LoadedModel b = io::load_model(d);
    CHECK(b.warnings.empty());
    const MoeConfig& mb = *b.model->config.moe;
    CHECK(mb.norm == "layer");
    CHECK(mb.share_groups == a->config.moe->share_groups);
    CHECK(mb.share_attention == share_attention);
    CHECK(b.model->layers[3].moe == b.model->layers[2].moe);
    CHECK((b.model->layers[1].attention.shared == &b.model->layers[0].attention) == share_attention);
    const Batch batch = tiny_batch(a->config, {6, 3}, 19);
    CHECK(b.model->forward(batch, nullptr, nullptr).logits == a->forward(batch, nullptr, nullptr).logits);
  }
}

TEST_CASE("A shared model whose owner block is missing fails to load, naming the tensor", "[io][sharing]") {
  auto a = shared_model(true);
  const fs::path d = scratch_dir("shared_missing");
  io::save_model(d, *a, nullptr, true);
  io::SafetensorsFile f = io::read_safetensors(d / "model.safetensors");
  f.tensors.erase("bert.encoder.layer.2.attention.self.key.weight");
  io::write_safetensors(d / "model.safetensors", f.tensors);
  REQUIRE_THROWS_WITH(io::load_model(d), Catch::Contains("bert.encoder.layer.2.attention.self.key.weight"));
}

TEST_CASE("config.json share_groups must be arrays of layer indices", "[io][sharing][config]") {
  nlohmann::json j = io::hf_config_json(shared_model(false)->config);
  j["moe"]["share_groups"] = {0, 1};
  REQUIRE_THROWS_WITH(io::parse_hf_config(j, "x/config.json"),
                      Catch::Contains("x/config.json") && Catch::Contains("moe.share_groups: expected an array of arrays"));
  j["moe"]["share_groups"] = {{0, 1}};
  j["moe"]["share_attention"] = "yes";
  REQUIRE_THROWS_WITH(io::parse_hf_config(j, "x/config.json"), Catch::Contains("moe.share_attention: expected true or false"));
}
