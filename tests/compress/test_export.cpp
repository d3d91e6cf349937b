// Export round trips through the loader every command uses: fp32 exact, fp16 logits within 1e-2
// relative, int8 predicted labels agreeing on >= 99% of examples, provenance pruning.
#include <unistd.h>

#include <catch2/catch.hpp>

#include "compress/export.h"
#include "compress/moefy.h"
#include "io/checkpoint.h"
#include "tests/support/synthetic_task.h"
#include "tests/support/temp_dir.h"
#include "tests/compress/moe_fixture.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;
namespace fs = std::filesystem;

namespace {

fs::path temp(const std::string& name) {
  static const fs::path dir = scratch_dir("export");
  return dir / name;
}

std::unique_ptr<BertModel> moe_model() { return random_moe_model(); }

Mat logits_of(const BertModel& m, const Batch& b) { return m.forward(b, nullptr, nullptr).logits; }

}  // namespace

TEST_CASE("Exported models load back: fp32 exact, fp16 close, int8 same labels", "[compress][export]") {
  const bool distilbert = GENERATE(false, true);
  INFO((distilbert ? "DistilBERT" : "BERT"));
  auto model = random_moe_model("", distilbert);
  const io::Vocab vocab = synthetic_vocab();
  std::vector<int64_t> lengths;
  for (int i = 0; i < 200; ++i) lengths.push_back(3 + i % 17);
  const Batch b = tiny_batch(model->config, lengths, 62);
  const Mat ref = logits_of(*model, b);

  struct Case {
    std::string format, dtype, file;
  };
  for (const Case& c : {Case{"hdf5", "fp32", "m32.h5"}, Case{"safetensors", "fp32", "m32.safetensors"},
                        Case{"hdf5", "fp16", "m16.h5"}, Case{"safetensors", "bf16", "mbf.safetensors"},
                        Case{"hdf5", "int8", "m8.h5"}}) {
    INFO(c.format << " " << c.dtype);
    compress::ExportOptions o;
    o.format = c.format;
    o.dtype = c.dtype;
    o.out = temp(c.file).string();
    o.prune = c.dtype == "int8";
    compress::export_model(*model, &vocab, true, o);
    io::LoadedModel loaded = io::load_model(o.out);
    REQUIRE(loaded.vocab);
    CHECK(loaded.vocab->tokens == vocab.tokens);
    REQUIRE(loaded.model->config.moe);
    CHECK(loaded.model->config.model_type == model->config.model_type);
    const Mat got = logits_of(*loaded.model, b);
    const float scale = ref.cwiseAbs().maxCoeff();
    if (c.dtype == "fp32") {
      CHECK(got == ref);
    } else if (c.dtype == "fp16") {
      CHECK((got - ref).cwiseAbs().maxCoeff() <= 1e-2f * scale);
    } else {
      const int agree = agreeing_labels(ref, got);
      INFO("labels agreeing: " << agree << " of " << ref.rows());
      CHECK(agree >= 0.99 * static_cast<double>(ref.rows()));
      if (c.dtype == "bf16") CHECK((got - ref).cwiseAbs().maxCoeff() <= 5e-2f * scale);
    }
  }
}

TEST_CASE("Export refuses int8 safetensors and unknown dtypes", "[compress][export]") {
  auto model = moe_model();
  compress::ExportOptions o;
  o.out = temp("bad.safetensors").string();
  o.format = "safetensors";
  o.dtype = "int8";
  REQUIRE_THROWS_WITH(compress::export_model(*model, nullptr, true, o), Catch::Contains("needs --format hdf5"));
  o.format = "hdf5";
  o.dtype = "int4";
  REQUIRE_THROWS_WITH(compress::export_model(*model, nullptr, true, o), Catch::Contains("--dtype must be"));
}

TEST_CASE("moefy refuses importance scores of another model", "[compress][split]") {
  BertConfig c = tiny_config();
  BertModel m(c);
  compress::MoefyOptions o;
  o.importance = "other.h5";
  o.experts = 2;
  o.expert_size = 8;
  o.shared = 2;
  compress::Importance wrong_layers;
  wrong_layers.layers.assign(5, std::vector<double>(32, 1.0));
  REQUIRE_THROWS_WITH(compress::moefy(m, o, &wrong_layers, nullptr), Catch::Contains("another model"));
  compress::Importance wrong_size;
  wrong_size.layers.assign(2, std::vector<double>(48, 1.0));
  REQUIRE_THROWS_WITH(compress::moefy(m, o, &wrong_size, nullptr), Catch::Contains("another model"));
}
