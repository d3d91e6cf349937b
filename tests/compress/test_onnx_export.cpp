// ONNX export held against ONNX Runtime (npm onnxruntime-node, run by node; skipped with a
// message where Node.js or the package is absent): the exported graph's logits equal moekit's
// forward (what `moekit predict` runs) on padded batches of mixed lengths, for dense, MoE hash,
// gate top-1 / top-2 and Go-Wider shared models; int8 agrees on labels.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "compress/export.h"
#include "compress/onnx_export.h"
#include "compress/onnx_runtime_probe.h"
#include "io/checkpoint.h"
#include "tests/compress/moe_fixture.h"
#include "tests/support/temp_dir.h"

#ifdef MOEKIT_HAVE_ONNX
#include "compress/onnx_graph.h"
#endif

using namespace moekit;
using nlohmann::json;

namespace {

// Empty when ONNX Runtime can run here; else why not.
std::string ort_missing() {
  if (!compress::onnx_export_available()) return "moekit built without libonnx-dev";
  return compress::onnx_runtime_missing();
}

// Logits of each batch from ONNX Runtime: [batch, labels], or per_token [batch * seq, labels].
std::vector<Mat> ort_logits(const std::filesystem::path& onnx, const std::vector<Batch>& batches, int labels,
                            bool per_token = false) {
  const auto dir = test::unique_scratch_dir("ort");
  json in = json::array();
  for (const Batch& b : batches) {
    std::vector<int64_t> mask(b.mask.begin(), b.mask.end());
    in.push_back({{"batch", b.batch}, {"seq", b.seq}, {"input_ids", b.ids}, {"attention_mask", mask},
                  {"token_type_ids", b.type_ids}});
  }
  std::ofstream(dir / "in.json") << in.dump();
  const std::string cmd = "NODE_PATH=" + compress::onnx_runtime_npm_dir() + "/node_modules node " + MOEKIT_TEST_DATA +
                          "/../../cli/ort_logits.js " + onnx.string() + " " + (dir / "in.json").string() + " > " +
                          (dir / "out.json").string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  const json out = json::parse(std::ifstream(dir / "out.json"));
  std::vector<Mat> r;
  for (size_t i = 0; i < batches.size(); ++i) {
    const auto v = out[i]["logits"].get<std::vector<float>>();
    const int64_t rows = per_token ? batches[i].n_tok() : batches[i].batch;
    REQUIRE(v.size() == static_cast<size_t>(rows * labels));
    r.push_back(Eigen::Map<const Mat>(v.data(), rows, labels));
  }
  return r;
}

std::vector<Batch> mixed_batches(const BertConfig& c) {
  return {test::tiny_batch(c, {3, 9, 16, 1, 12, 24}, 1), test::tiny_batch(c, {7}, 2),
          test::tiny_batch(c, {2, 2, 5}, 3)};
}

std::filesystem::path export_onnx(const BertModel& m, const std::string& dtype, const std::string& name) {
  compress::ExportOptions o;
  o.format = "onnx";
  o.dtype = dtype;
  o.out = (test::unique_scratch_dir("onnx") / (name + ".onnx")).string();
  compress::export_onnx(m, o);
  return o.out;
}

double max_abs_diff(const BertModel& m, const std::filesystem::path& onnx) {
  const auto batches = mixed_batches(m.config);
  const auto ort = ort_logits(onnx, batches, static_cast<int>(m.config.num_labels()), m.config.per_token_head());
  double worst = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    const Mat ours = m.forward(batches[i], nullptr, nullptr).logits;
    worst = std::max(worst, static_cast<double>((ours - ort[i]).cwiseAbs().maxCoeff()));
  }
  return worst;
}

std::unique_ptr<BertModel> moe_model(const std::string& router, int top_k, const std::string& share_groups = "",
                                     const std::string& shared_mode = "copy", const std::string& norm = "") {
  BertConfig c = test::tiny_config();
  c.hidden_size = 32;
  c.intermediate_size = 64;
  auto m = std::make_unique<BertModel>(c);
  test::randomize(*m, 61, 0.2);
  compress::MoefyOptions o;
  o.method = shared_mode == "tied" ? "importance" : "random";
  o.experts = 4;
  o.expert_size = 16;
  o.shared = shared_mode == "tied" ? 6 : 0;
  o.shared_mode = shared_mode;
  o.importance = "in memory";
  o.norm = norm;
  o.router = router;
  o.top_k = top_k;
  o.share_groups = share_groups;
  if (!share_groups.empty()) o.share_attention = "mean";
  const compress::Importance imp = test::fake_importance(c, 3);
  compress::moefy(*m, compress::resolve_moefy_options(o, c), &imp, nullptr);
  // A random gate of std 0.02 sends nearly every token the same way; a wider one routes them apart.
  for (Param* p : m->params())
    if (p->name.find("router.weight") != std::string::npos) p->value *= 50.0f;
  m->classifier.weight.value *= 20.0f;
  return m;
}

}  // namespace

TEST_CASE("ONNX export: fp32 logits equal moekit's on padded mixed-length batches (ONNX Runtime)", "[onnx]") {
  const std::string missing = ort_missing();
  if (!missing.empty()) {
    WARN("skipped: " << missing);
    return;
  }
  constexpr double kTol = 1e-4;  // the budget: float round-off of two implementations
  SECTION("dense") {
    BertConfig c = test::tiny_config();
    BertModel m(c);
    test::randomize(m, 7, 0.3);
    CHECK(max_abs_diff(m, export_onnx(m, "fp32", "dense")) <= kTol);
  }
  SECTION("MoE, hash router, expert LayerNorms") {
    auto m = test::random_moe_model();
    CHECK(max_abs_diff(*m, export_onnx(*m, "fp32", "hash")) <= kTol);
  }
  SECTION("MoE, gate top-1 (raw probability)") {
    auto m = moe_model("gate", 1);
    CHECK(max_abs_diff(*m, export_onnx(*m, "fp32", "gate1")) <= kTol);
  }
  SECTION("MoE, gate top-2 (renormalised)") {
    auto m = moe_model("gate", 2);
    CHECK(max_abs_diff(*m, export_onnx(*m, "fp32", "gate2")) <= kTol);
  }
  SECTION("MoE, tied shared FFN (hash, expert norms; gate top-2, layer norm)") {
    auto m = moe_model("hash", 1, "", "tied");
    CHECK(max_abs_diff(*m, export_onnx(*m, "fp32", "tied_hash")) <= kTol);
    auto g = moe_model("gate", 2, "", "tied", "layer");
    CHECK(max_abs_diff(*g, export_onnx(*g, "fp32", "tied_gate")) <= kTol);
  }
  SECTION("MoE, sentence gate (one expert per sequence from the masked mean)") {
    auto m = moe_model("gate-sentence", 1);
    CHECK(max_abs_diff(*m, export_onnx(*m, "fp32", "sentence")) <= kTol);
  }
  SECTION("Go-Wider: layers 0-1 share one MoE FFN and attention, layer norm") {
    auto m = moe_model("gate", 2, "0-1");
    CHECK(max_abs_diff(*m, export_onnx(*m, "fp32", "shared")) <= kTol);
  }
  SECTION("DistilBERT: dense (no token_type_ids input, pre_classifier -> ReLU head) and MoE hash") {
    BertConfig c = test::tiny_distilbert_config();
    BertModel m(c);
    test::randomize(m, 8, 0.3);
    CHECK(max_abs_diff(m, export_onnx(m, "fp32", "distil")) <= kTol);
    auto moe = test::random_moe_model("", true);
    CHECK(max_abs_diff(*moe, export_onnx(*moe, "fp32", "distil_moe")) <= kTol);
  }
  SECTION("Token classification (a tag score per token, padding rows too): BERT and DistilBERT") {
    for (BertConfig c : {test::tiny_config(), test::tiny_distilbert_config()}) {
      INFO(c.model_type);
      c.task = Task::token_classification;
      BertModel m(c);
      test::randomize(m, 9, 0.3);
      CHECK(max_abs_diff(m, export_onnx(m, "fp32", "token_" + c.model_type)) <= kTol);
    }
  }
}

#ifdef MOEKIT_HAVE_ONNX
TEST_CASE("ONNX export: MoE graphs route sparsely and store shared blocks once", "[onnx]") {
  auto count = [](const onnx::ModelProto& p, const std::string& op) {
    return std::count_if(p.graph().node().begin(), p.graph().node().end(),
                         [&](const onnx::NodeProto& n) { return n.op_type() == op; });
  };
  auto m = moe_model("gate", 2, "0-1");
  const onnx::ModelProto p = compress::build_onnx_model(*m, {});
  // One NonZero (token selection) and one ScatterND per expert and layer: no expert sees all tokens.
  CHECK(count(p, "NonZero") == 8);
  CHECK(count(p, "ScatterND") == 8);
  CHECK(count(p, "TopK") == 2);
  std::set<std::string> names;
  for (const auto& t : p.graph().initializer()) {
    CHECK(names.insert(t.name()).second);
    CHECK(t.name().find("layer.1.moe.") == std::string::npos);  // the owner's (layer 0) names only
    CHECK(t.name().find("layer.1.attention.self.") == std::string::npos);
  }
  CHECK(names.count("bert.encoder.layer.1.output.LayerNorm.weight") == 1);  // each layer's own norm
}

TEST_CASE("ONNX export: a DistilBERT graph takes no token_type_ids and keeps DistilBERT's names", "[onnx]") {
  BertModel m(test::tiny_distilbert_config());
  const onnx::ModelProto p = compress::build_onnx_model(m, {});
  std::vector<std::string> inputs;
  for (const auto& v : p.graph().input()) inputs.push_back(v.name());
  CHECK(inputs == std::vector<std::string>{"input_ids", "attention_mask"});
  std::set<std::string> names;
  for (const auto& t : p.graph().initializer()) names.insert(t.name());
  for (const char* n : {"distilbert.transformer.layer.1.attention.q_lin.weight", "distilbert.transformer.layer.1.sa_layer_norm.weight",
                        "distilbert.transformer.layer.1.ffn.lin2.weight", "pre_classifier.weight", "classifier.weight"})
    CHECK(names.count(n) == 1);
}
#endif

TEST_CASE("ONNX export: int8 labels agree with moekit's int8 model (ONNX Runtime)", "[onnx]") {
  const std::string missing = ort_missing();
  if (!missing.empty()) {
    WARN("skipped: " << missing);
    return;
  }
  auto m = test::random_moe_model();
  const auto onnx = export_onnx(*m, "int8", "int8");
  compress::ExportOptions o;
  o.dtype = "int8";
  o.out = (test::unique_scratch_dir("int8h5") / "m.h5").string();
  compress::export_model(*m, nullptr, true, o);
  const io::LoadedModel q = io::load_model(o.out, 0, io::LoadFor::inference);
  std::vector<Batch> batches;
  for (uint64_t s = 0; s < 10; ++s) {
    std::vector<int64_t> lengths;
    for (int i = 0; i < 20; ++i) lengths.push_back(1 + static_cast<int64_t>((s * 20 + i) * 7 % 24));
    batches.push_back(test::tiny_batch(m->config, lengths, 100 + s));
  }
  const auto ort = ort_logits(onnx, batches, static_cast<int>(m->config.num_labels()));
  int agree_int8 = 0, agree_fp32 = 0, total = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    agree_int8 += test::agreeing_labels(q.model->forward(batches[i], nullptr, nullptr).logits, ort[i]);
    agree_fp32 += test::agreeing_labels(m->forward(batches[i], nullptr, nullptr).logits, ort[i]);
    total += static_cast<int>(batches[i].batch);
  }
  std::cout << "ONNX int8 vs moekit int8: " << agree_int8 << "/" << total << " labels agree; vs moekit fp32: "
            << agree_fp32 << "/" << total << "\n";
  CHECK(agree_int8 >= 0.99 * total);
}

TEST_CASE("ONNX export: --external-data puts the weights in OUT.data, and ONNX Runtime reads them", "[onnx]") {
  if (!compress::onnx_export_available()) {
    WARN("skipped: moekit built without libonnx-dev");
    return;
  }
  auto m = moe_model("hash", 1);
  compress::ExportOptions o;
  o.format = "onnx";
  o.dtype = "fp32";
  o.out = (test::unique_scratch_dir("onnx-ext") / "m.onnx").string();
  const auto inline_summary = compress::export_onnx(*m, o);
  const auto inline_bytes = std::filesystem::file_size(o.out);
  o.external_data = true;
  const auto external_summary = compress::export_onnx(*m, o);
  const std::filesystem::path data = o.out + ".data";
  REQUIRE(std::filesystem::exists(data));
  // Every tensor of 1 KB or more moved out (this tiny model has many smaller ones, which stay).
  CHECK(std::filesystem::file_size(o.out) < inline_bytes / 2);
  CHECK(std::filesystem::file_size(data) + std::filesystem::file_size(o.out) >= inline_bytes);
  CHECK(external_summary.tensors == inline_summary.tensors);
  if (const std::string missing = ort_missing(); !missing.empty()) {
    WARN("ONNX Runtime part skipped: " << missing);
  } else {
    CHECK(max_abs_diff(*m, o.out) <= 1e-4);
  }
  // An inline export over it removes the stale data file.
  o.external_data = false;
  compress::export_onnx(*m, o);
  CHECK_FALSE(std::filesystem::exists(data));
  CHECK(std::filesystem::file_size(o.out) == inline_bytes);
}
