// Sizes read from files are bounded before anything is allocated (issue 14): config fields
// against maxima and against the weight file, dataset line lengths, vocabulary file size.
#include <catch2/catch.hpp>
#include <fstream>

#include "io/config_fit.h"
#include "io/dataset.h"
#include "io/hf_config.h"
#include "io/vocab.h"
#include "model/error.h"
#include "tests/support/temp_dir.h"

using namespace moekit;
using namespace moekit::io;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

nlohmann::json small_config() {
  return {{"vocab_size", 64}, {"hidden_size", 16}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
          {"intermediate_size", 32}, {"max_position_embeddings", 40}};
}

Tensor f32(std::vector<int64_t> shape) {
  Tensor t;
  t.dtype = DType::F32;
  t.shape = shape;
  t.data.resize(size_t(*checked_numel(shape)) * 4);
  return t;
}

// The tensors of small_config() that min_parameters counts (exactly its lower bound).
std::map<std::string, Tensor> small_weights() {
  std::map<std::string, Tensor> w;
  w["bert.embeddings.word_embeddings.weight"] = f32({64, 16});
  w["bert.embeddings.position_embeddings.weight"] = f32({40, 16});
  w["bert.embeddings.token_type_embeddings.weight"] = f32({2, 16});
  for (int l = 0; l < 2; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    w[p + "intermediate.dense.weight"] = f32({32, 16});
    w[p + "output.dense.weight"] = f32({16, 32});
    for (const char* a : {"query", "key", "value"}) w[p + "attention.self." + a + ".weight"] = f32({16, 16});
    w[p + "attention.output.dense.weight"] = f32({16, 16});
    w[p + "attention.output.LayerNorm.weight"] = f32({16});
    w[p + "attention.output.LayerNorm.bias"] = f32({16});
  }
  return w;
}

}  // namespace

TEST_CASE("config fields beyond moekit's maxima are refused by name", "[bounds][config]") {
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"num_hidden_layers", 100000000}, {"hidden_size", 1048576},         {"vocab_size", 4000001},
      {"num_attention_heads", 4096},    {"intermediate_size", 1 << 20}, {"max_position_embeddings", 1 << 20},
      {"type_vocab_size", 100000}};
  for (const auto& [key, value] : cases) {
    nlohmann::json j = small_config();
    j[key] = value;
    INFO(key);
    CHECK_THROWS_WITH(parse_hf_config(j, "config.json"),
                      Contains("config.json: " + key + " = " + std::to_string(value) + " is larger than moekit allows"));
  }
  nlohmann::json moe = small_config();
  moe["moe"] = {{"experts", 5000}, {"expert_size", 8}};
  CHECK_THROWS_WITH(parse_hf_config(moe, "c.json"), Contains("c.json: moe.experts = 5000 is larger than moekit allows"));
  CHECK_NOTHROW(parse_hf_config(small_config(), "config.json"));
}

TEST_CASE("a config that asks for more than its weight file holds fails before the model is built",
          "[bounds][config]") {
  const auto weights = small_weights();
  auto config_with = [](const char* key, int64_t value) {
    nlohmann::json j = small_config();
    j[key] = value;
    return parse_hf_config(j, "config.json");
  };
  CHECK_NOTHROW(check_config_fits_weights(parse_hf_config(small_config(), "config.json"), weights, "config.json",
                                          "dir/model.safetensors"));
  CHECK_THROWS_WITH(check_config_fits_weights(config_with("vocab_size", 3000000), weights, "config.json",
                                              "dir/model.safetensors"),
                    "config.json: vocab_size = 3000000, but model.safetensors stores "
                    "embeddings.word_embeddings.weight as [64, 16]");
  CHECK_THROWS_WITH(check_config_fits_weights(config_with("hidden_size", 1024), weights, "config.json", "m.safetensors"),
                    Contains("hidden_size = 1024, but m.safetensors stores"));
  CHECK_THROWS_WITH(check_config_fits_weights(config_with("max_position_embeddings", 100000), weights, "config.json",
                                              "m.safetensors"),
                    Contains("max_position_embeddings = 100000, but"));
  CHECK_THROWS_WITH(check_config_fits_weights(config_with("num_hidden_layers", 1000), weights, "config.json",
                                              "m.safetensors"),
                    "config.json: num_hidden_layers = 1000, but m.safetensors holds tensors of 2 layers");
  CHECK_THROWS_WITH(check_config_fits_weights(config_with("intermediate_size", 200000), weights, "config.json",
                                              "m.safetensors"),
                    Contains("config.json: the config needs at least") && Contains("intermediate_size = 200000"));
}

TEST_CASE("dataset lines and vocabulary files have size limits", "[bounds][dataset]") {
  const fs::path dir = test::scratch_dir("bounds_files");
  {
    std::ofstream out(dir / "long.tsv", std::ios::binary);
    out << "label\ttext\npos\t" << std::string(2 << 20, 'a') << "\n";
  }
  CHECK_THROWS_WITH(read_dataset(dir / "long.tsv", {"pos"}, true),
                    Contains("long.tsv: line 2: longer than 1048576 bytes"));
  {
    std::ofstream out(dir / "ok.tsv", std::ios::binary);
    out << "label\ttext\npos\t" << std::string(1000, 'a');  // no final newline: still read
  }
  CHECK(read_dataset(dir / "ok.tsv", {"pos"}, true).size() == 1);
  {
    std::ofstream out(dir / "big_vocab.txt");
  }
  fs::resize_file(dir / "big_vocab.txt", uintmax_t(65) << 20);  // sparse: no 65 MB written
  CHECK_THROWS_WITH(Vocab::load(dir / "big_vocab.txt"),
                    Contains("big_vocab.txt: vocabulary file of 68157440 bytes is larger than moekit allows"));
}
