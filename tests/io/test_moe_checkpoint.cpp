// MoE model directories: exact save/load round trip (experts, router, hash tables, neuron_index,
// config "moe"), and the errors for missing or malformed MoE tensors and config.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <fstream>
#include <numeric>

#include "io/checkpoint.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return scratch_dir("moe_ckpt_" + name); }

// A tiny model whose layers `layers` are MoE, sliced from its dense FFNs (4 experts of 8 of 32).
std::unique_ptr<BertModel> moe_model(const std::string& router, int64_t top_k, std::vector<int64_t> layers) {
  BertConfig c = tiny_config();
  auto model = std::make_unique<BertModel>(c);
  randomize(*model, 51, 0.3);
  MoeConfig cfg;
  cfg.n_experts = 4;
  cfg.expert_size = 8;
  cfg.method = "random";
  cfg.router = router;
  cfg.top_k = top_k;
  cfg.layers = std::move(layers);
  std::vector<MoeFFN> ffns;
  for (int64_t l : cfg.layers) {
    std::vector<int32_t> perm(32);
    std::iota(perm.begin(), perm.end(), 0);
    Rng rng(static_cast<uint64_t>(l));
    for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[rng.below(i)]);
    std::vector<std::vector<int32_t>> parts(4);
    for (size_t i = 0; i < perm.size(); ++i) parts[i / 8].push_back(perm[i]);
    Router r = HashRouter{make_hash_table(c.vocab_size, 4, static_cast<uint64_t>(l))};
    if (router == "gate") {
      GateRouter g;
      g.init("x", c.hidden_size, 4, top_k);
      g.weight.value.setRandom();
      r = std::move(g);
    }
    ffns.push_back(MoeFFN::from_dense(model->layers[static_cast<size_t>(l)].ffn, parts, std::move(r)));
  }
  model->set_moe(cfg, std::move(ffns));
  return model;
}

void rewrite_weights(const fs::path& dir, const std::function<void(std::map<std::string, io::Tensor>&)>& edit) {
  io::SafetensorsFile f = io::read_safetensors(dir / "model.safetensors");
  edit(f.tensors);
  io::write_safetensors(dir / "model.safetensors", f.tensors);
}

}  // namespace

TEST_CASE("An MoE model survives save_model and load_model exactly", "[io][moe]") {
  struct Case {
    const char* router;
    int64_t top_k;
    std::vector<int64_t> layers;
  };
  for (const Case& cs : {Case{"hash", 1, {0, 1}}, Case{"gate", 2, {1}}}) {
    INFO(cs.router);
    auto a = moe_model(cs.router, cs.top_k, cs.layers);
    const fs::path d = fresh_dir(cs.router);
    io::save_model(d, *a, nullptr, true);
    io::LoadedModel b = io::load_model(d);
    REQUIRE(b.model->config.moe);
    const MoeConfig &ma = *a->config.moe, &mb = *b.model->config.moe;
    CHECK(mb.n_experts == ma.n_experts);
    CHECK(mb.expert_size == ma.expert_size);
    CHECK(mb.method == ma.method);
    CHECK(mb.router == ma.router);
    CHECK(mb.top_k == ma.top_k);
    CHECK(mb.layers == ma.layers);
    CHECK(b.warnings.empty());  // every stored tensor was used
    ParamList pa = a->params(), pb = b.model->params();
    REQUIRE(pa.size() == pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      INFO(pa[i]->name);
      REQUIRE(pa[i]->name == pb[i]->name);
      CHECK(pa[i]->value == pb[i]->value);
    }
    auto ia = a->index_params(), ib = b.model->index_params();
    REQUIRE(ia.size() == ib.size());
    for (size_t i = 0; i < ia.size(); ++i) {
      CHECK(ia[i].name == ib[i].name);
      CHECK(*ia[i].values == *ib[i].values);
    }
    CHECK(b.dtype_counts["I32"] == static_cast<int>(ia.size()));
    Batch batch = tiny_batch(a->config, {6, 3}, 19);
    CHECK(b.model->forward(batch, nullptr, nullptr).logits == a->forward(batch, nullptr, nullptr).logits);
    fs::remove_all(d);
  }
}

TEST_CASE("model_tensors writes MoE tensors under their HF-style names and dtypes", "[io][moe]") {
  auto m = moe_model("hash", 1, {1});
  auto t = io::model_tensors(*m);
  const std::string p = "bert.encoder.layer.1.moe.";
  CHECK(t.count("bert.encoder.layer.1.intermediate.dense.weight") == 0);
  CHECK(t.count("bert.encoder.layer.0.intermediate.dense.weight") == 1);
  CHECK(t.at(p + "experts.3.intermediate.dense.weight").shape == std::vector<int64_t>{8, 16});
  CHECK(t.at(p + "experts.3.output.dense.weight").shape == std::vector<int64_t>{16, 8});
  CHECK(t.at(p + "experts.3.output.dense.bias").shape == std::vector<int64_t>{16});
  CHECK(t.at(p + "experts.3.output.LayerNorm.weight").shape == std::vector<int64_t>{16});
  CHECK(t.at(p + "hash_table").dtype == io::DType::I32);
  CHECK(t.at(p + "hash_table").shape == std::vector<int64_t>{40});
  CHECK(t.at(p + "experts.0.neuron_index").dtype == io::DType::I32);
  CHECK(t.at(p + "experts.0.neuron_index").shape == std::vector<int64_t>{8});
  CHECK(t.count(p + "router.weight") == 0);
  auto g = io::model_tensors(*moe_model("gate", 1, {1}));
  CHECK(g.at(p + "router.weight").shape == std::vector<int64_t>{4, 16});
  CHECK(g.count(p + "hash_table") == 0);
  // A dense model's config.json has no "moe" section.
  CHECK(!io::hf_config_json(tiny_config()).contains("moe"));
}

TEST_CASE("Missing or malformed MoE tensors are errors naming the tensor and the file", "[io][moe][corrupt]") {
  auto m = moe_model("hash", 1, {0, 1});
  const std::string p = "bert.encoder.layer.1.moe.";
  auto expect_error = [&](const std::string& name, const std::function<void(std::map<std::string, io::Tensor>&)>& edit,
                          const std::vector<std::string>& phrases) {
    INFO(name);
    const fs::path d = fresh_dir("bad_" + name);
    io::save_model(d, *m, nullptr, true);
    rewrite_weights(d, edit);
    try {
      io::load_model(d);
      FAIL("loaded a model with " << name);
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK_THAT(what, Catch::Contains("model.safetensors"));
      for (const auto& phrase : phrases) CHECK_THAT(what, Catch::Contains(phrase));
    }
    fs::remove_all(d);
  };
  expect_error("missing", [&](auto& t) {
    t.erase(p + "experts.2.output.dense.bias");
    t.erase("bert.encoder.layer.0.moe.experts.0.neuron_index");
  }, {"missing tensor " + p + "experts.2.output.dense.bias", "missing tensor bert.encoder.layer.0.moe.experts.0.neuron_index"});
  expect_error("missing_table", [&](auto& t) { t.erase(p + "hash_table"); }, {"missing tensor " + p + "hash_table"});
  expect_error("out_of_range", [&](auto& t) {
    std::vector<int32_t> v(40, 1);
    v[3] = 7;
    t[p + "hash_table"] = io::int32_tensor(v, {40});
  }, {p + "hash_table: value 7 at index 3 is outside [0, 4)"});
  expect_error("short_table", [&](auto& t) { t[p + "hash_table"] = io::int32_tensor(std::vector<int32_t>(39, 0), {39}); },
               {p + "hash_table: expected shape [40], got [39]"});
  expect_error("float_table", [&](auto& t) { t[p + "hash_table"] = io::mat_to_tensor(Mat::Zero(1, 40), io::DType::F32, true); },
               {p + "hash_table: expected an integer dtype"});
  expect_error("neuron_range", [&](auto& t) {
    t[p + "experts.1.neuron_index"] = io::int32_tensor(std::vector<int32_t>(8, 32), {8});
  }, {p + "experts.1.neuron_index: value 32 at index 0 is outside [-1, 32)"});
  expect_error("expert_shape", [&](auto& t) {
    t[p + "experts.0.intermediate.dense.weight"] = io::mat_to_tensor(Mat::Zero(9, 16), io::DType::F32, false);
  }, {p + "experts.0.intermediate.dense.weight: expected shape [8, 16], got [9, 16]"});
}

TEST_CASE("Bad config.json moe sections are errors naming the key", "[io][moe][corrupt]") {
  nlohmann::json base = io::hf_config_json(moe_model("gate", 2, {1})->config);
  REQUIRE(base["moe"]["top_k"] == 2);
  CHECK(io::parse_hf_config(base, "c.json").moe->top_k == 2);
  auto expect = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& phrase) {
    nlohmann::json j = base;
    edit(j);
    INFO(j["moe"].dump());
    CHECK_THROWS_WITH(io::parse_hf_config(j, "c.json"), Catch::Contains("c.json") && Catch::Contains(phrase));
  };
  expect([](auto& j) { j["moe"] = 3; }, "moe: expected an object");
  expect([](auto& j) { j["moe"].erase("experts"); }, "missing required key \"moe.experts\"");
  expect([](auto& j) { j["moe"]["expert_size"] = "8"; }, "moe.expert_size: expected an integer");
  expect([](auto& j) { j["moe"]["router"] = "hash"; }, "moe.top_k");  // top-2 needs a gate
  expect([](auto& j) { j["moe"]["router"] = "learned"; }, "moe.router: unknown \"learned\"");
  expect([](auto& j) { j["moe"]["layers"] = {1, 2}; }, "moe.layers: layer 2 does not exist");
  expect([](auto& j) { j["moe"]["layers"] = {1, 1}; }, "moe.layers: expected increasing");
  expect([](auto& j) { j["moe"]["shared"] = 9; }, "moe.shared");
  // "layers" absent means every layer.
  nlohmann::json all = base;
  all["moe"].erase("layers");
  CHECK(io::parse_hf_config(all, "c.json").moe->layers == std::vector<int64_t>{0, 1});
}
