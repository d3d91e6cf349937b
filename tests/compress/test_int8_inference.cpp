// An int8 export run on int8 kernels (io::LoadFor::inference) against the same file dequantised
// to float (io::LoadFor::training): same weights, so only the kernels' dynamic quantisation of
// activations separates them. Also: what such a model refuses (training, saving).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "compress/export.h"
#include "compress/moefy.h"
#include "io/checkpoint.h"
#include "io/exported_model.h"
#include "io/hf_config.h"
#include "tests/support/synthetic_task.h"
#include "tests/support/temp_dir.h"
#include "tests/compress/moe_fixture.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// The int8 kernels quantise every Linear input row to 127 steps of its largest entry (about
// 2.5 standard deviations for these rows), so each input carries a uniform error of up to half a
// step: noise of about 0.6% of the output's spread per Linear. LayerNorm re-normalises after
// every block, so the 14 Linears on a token's path (6 per layer, pooler, classifier) add in
// quadrature rather than compound: a few percent. Measured: 2.1% of the largest logit over these
// 600 logits. The budget is 5%: a wrong kernel's error is of the order of the logits themselves,
// and the label check below guards what users see.
constexpr float kInt8LogitBudget = 5e-2f;
constexpr double kInt8LabelAgreement = 0.99;

// Layer 0 dense, layer 1 MoE (4 hash-routed experts): both FFN kinds run on the int8 kernels.
std::unique_ptr<BertModel> mixed_model() { return random_moe_model("1"); }

fs::path export_int8(BertModel& model, const std::string& name) {
  static const fs::path dir = scratch_dir("int8_inference");
  compress::ExportOptions o;
  o.format = "hdf5";
  o.dtype = "int8";
  o.out = (dir / name).string();
  const io::Vocab vocab = synthetic_vocab();
  compress::export_model(model, &vocab, true, o);
  return o.out;
}

// The model on int8 kernels, as predict, eval and bench load it (on every CPU).
io::LoadedModel load_int8(const fs::path& file) { return io::load_model(file, 0, io::LoadFor::inference); }

int count_int8_linears(const BertModel& m) {
  int n = (m.pooler.int8_weight ? 1 : 0) + (m.classifier.int8_weight ? 1 : 0);
  for (const EncoderLayer& l : m.layers) {
    for (const Linear* a : {&l.attention.query, &l.attention.key, &l.attention.value, &l.attention.out})
      n += a->int8_weight ? 1 : 0;
    if (l.moe) {
      for (const ExpertFFN& e : l.moe->experts) n += (e.intermediate.int8_weight ? 1 : 0) + (e.output.int8_weight ? 1 : 0);
    } else {
      n += (l.ffn.intermediate.int8_weight ? 1 : 0) + (l.ffn.output.int8_weight ? 1 : 0);
    }
  }
  return n;
}

}  // namespace

TEST_CASE("An int8 export on int8 kernels agrees with its dequantised float model", "[int8][export]") {
  auto model = mixed_model();
  const fs::path file = export_int8(*model, "mixed.h5");
  io::LoadedModel fp = io::load_model(file);  // LoadFor::training: every tensor dequantised
  io::LoadedModel q = load_int8(file);
  // Layer 0: 4 attention + 2 dense FFN; layer 1: 4 attention + 4 x 2 expert; pooler, classifier.
  CHECK(count_int8_linears(*fp.model) == 0);
  CHECK(count_int8_linears(*q.model) == 6 + 12 + 2);
  // Embeddings are gathered, not multiplied: they stay float (dequantised).
  CHECK(q.model->embeddings.word.value.size() > 0);

  std::vector<int64_t> lengths;
  for (int i = 0; i < 200; ++i) lengths.push_back(3 + i % 17);
  const Batch b = tiny_batch(model->config, lengths, 62);
  const Mat ref = fp.model->forward(b, nullptr, nullptr).logits;
  const Mat got = q.model->forward(b, nullptr, nullptr).logits;
  REQUIRE(got.allFinite());
  const float scale = ref.cwiseAbs().maxCoeff();
  const float err = (got - ref).cwiseAbs().maxCoeff();
  INFO("largest logit " << scale << ", largest difference " << err);
  CHECK(err > 0);  // the int8 kernels really ran (activation rounding always shows)
  CHECK(err <= kInt8LogitBudget * scale);
  const int agree = agreeing_labels(ref, got);
  INFO("labels agreeing: " << agree << " of " << ref.rows());
  CHECK(agree >= kInt8LabelAgreement * static_cast<double>(ref.rows()));
}

TEST_CASE("A model loaded for inference with int8 weights refuses training and saving", "[int8][export]") {
  auto model = mixed_model();
  const fs::path file = export_int8(*model, "refuse.h5");
  io::LoadedModel q = load_int8(file);
  const Batch b = tiny_batch(model->config, {5, 7}, 63);
  ForwardCache cache;
  REQUIRE_THROWS_WITH(q.model->forward(b, &cache, nullptr), Contains("inference-only"));
  REQUIRE_THROWS_WITH(io::model_tensors(*q.model), Contains("loaded for inference with int8 weights"));
  // Loaded for training, the same file is an ordinary float model that can be saved.
  io::LoadedModel fp = io::load_model(file, 0, io::LoadFor::training);
  CHECK(io::model_tensors(*fp.model).size() == io::model_tensors(*model).size());
}

TEST_CASE("load_model keeps int8 weights for inference on every CPU", "[int8][export]") {
  auto model = mixed_model();
  const fs::path file = export_int8(*model, "policy.h5");
  io::LoadedModel q = io::load_model(file, 0, io::LoadFor::inference);
  CHECK(count_int8_linears(*q.model) == 20);
  // A float file is the same for both uses.
  static const fs::path dir = scratch_dir("int8_policy");
  compress::ExportOptions o;
  o.dtype = "fp32";
  o.out = (dir / "fp32.h5").string();
  compress::export_model(*model, nullptr, true, o);
  CHECK(count_int8_linears(*io::load_model(o.out, 0, io::LoadFor::inference).model) == 0);
}
