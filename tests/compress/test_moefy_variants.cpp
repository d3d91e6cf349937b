// moefy's issue-19 variants on a whole model: --shared-mode tied (stored once; checkpoint and every
// export format load back), --method upcycle (at conversion the MoE equals the dense model for hash
// routers and renormalised top-k gates), --router gate-sentence and router fitting (--fit-router).
#include <catch2/catch.hpp>

#include "compress/export.h"
#include "compress/moefy.h"
#include "compress/route_fit.h"
#include "io/checkpoint.h"
#include "tests/compress/moe_fixture.h"
#include "tests/support/synthetic_task.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;
namespace fs = std::filesystem;

namespace {

BertConfig small_config() {
  BertConfig c = tiny_config();
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.vocab_size = static_cast<int64_t>(synthetic_vocab().tokens.size());
  return c;
}

std::unique_ptr<BertModel> converted(const compress::MoefyOptions& in, const BertModel& dense) {
  auto m = std::make_unique<BertModel>(dense.config);
  const ParamList from = const_cast<BertModel&>(dense).params(), to = m->params();
  for (size_t i = 0; i < from.size(); ++i) to[i]->value = from[i]->value;
  const compress::Importance imp = fake_importance(dense.config, 5);
  compress::MoefyOptions o = in;
  if (o.method == "importance" || (o.method == "upcycle" && o.expert_size > 0 && o.expert_size < dense.config.intermediate_size))
    o.importance = "scores";  // in memory
  compress::moefy(*m, compress::resolve_moefy_options(o, dense.config), &imp, nullptr);
  return m;
}

std::unique_ptr<BertModel> dense_model() {
  auto m = std::make_unique<BertModel>(small_config());
  randomize(*m, 61, 0.2);
  m->classifier.weight.value *= 20.0f;
  return m;
}

Mat logits_of(const BertModel& m, const Batch& b) { return m.forward(b, nullptr, nullptr).logits; }

double rel_diff(const Mat& a, const Mat& b) {
  return (a - b).cwiseAbs().maxCoeff() / (1.0 + static_cast<double>(b.cwiseAbs().maxCoeff()));
}

}  // namespace

TEST_CASE("moefy --shared-mode tied: S = 0 equals copy, S > 0 equals copy at conversion, fewer parameters",
          "[compress][moefy][tied]") {
  auto dense = dense_model();
  const Batch b = tiny_batch(dense->config, {5, 12, 3, 20}, 7);
  for (const char* router : {"hash", "gate"}) {
    for (int shared : {0, 8}) {
      INFO(router << " shared " << shared);
      compress::MoefyOptions o;
      o.method = "importance";
      o.experts = 4;
      o.expert_size = 16;
      o.shared = shared;
      o.router = router;
      o.top_k = std::string(router) == "gate" ? 2 : 1;
      auto copy = converted(o, *dense);
      o.shared_mode = "tied";
      auto tied = converted(o, *dense);
      CHECK(tied->config.moe->tied());
      const Mat lc = logits_of(*copy, b), lt = logits_of(*tied, b);
      if (shared == 0) {
        CHECK(lt == lc);
        CHECK(count_values(tied->params()) == count_values(copy->params()));
      } else {
        CHECK(rel_diff(lt, lc) <= 1e-5);
        // Each layer stores the 8 shared neurons once instead of 4 times (minus the shared FFN's
        // own output bias).
        const int64_t h = dense->config.hidden_size;
        const int64_t per_neuron = 2 * h + 1;
        CHECK(static_cast<int64_t>(count_values(copy->params()) - count_values(tied->params())) ==
              dense->config.num_hidden_layers * (3 * 8 * per_neuron - h));
      }
    }
  }
}

TEST_CASE("Tied inference packs: each top-1 expert fused with the shared FFN gives the unfused logits",
          "[compress][moefy][tied]") {
  auto dense = dense_model();
  const Batch b = tiny_batch(dense->config, {5, 12, 3, 20}, 7);
  struct Case {
    const char* router;
    int top_k;
    bool fused;  // top-k > 1 would run S k times: not fused
  };
  for (const Case& k : {Case{"hash", 1, true}, Case{"gate", 1, true}, Case{"gate-sentence", 1, true},
                        Case{"gate", 2, false}}) {
    INFO(k.router << " top-" << k.top_k);
    compress::MoefyOptions o;
    o.method = "importance";
    o.experts = 4;
    o.expert_size = 16;
    o.shared = 8;
    o.router = k.router;
    o.top_k = k.top_k;
    o.shared_mode = "tied";
    auto tied = converted(o, *dense);
    // Varied output biases (a constant one would vanish in the LayerNorm), so b2_s + b2_e is checked.
    for (Param* p : tied->params())
      if (p->vector && p->name.find("output.dense.bias") != std::string::npos) p->value.setRandom();
    const Mat plain = logits_of(*tied, b);
    tied->pack_for_inference();
    int fused_layers = 0;
    for (const EncoderLayer& l : tied->layers) fused_layers += l.moe && l.moe->tied_fused ? 1 : 0;
    CHECK(fused_layers == (k.fused ? tied->config.num_hidden_layers : 0));
    CHECK(rel_diff(logits_of(*tied, b), plain) <= 1e-5);
    // Training drops the fused copies, so they never outlive the weights they were made from.
    MoeFFN& moe = *tied->layers[0].moe;
    MoeFFN::Cache cache;
    Mat x = Mat::Random(b.n_tok(), dense->config.hidden_size), y, dx;
    Rng rng(3);
    moe.forward(x, b, y, &cache, &rng, nullptr);
    moe.backward(Mat::Ones(y.rows(), y.cols()), b, cache, dx, 0.0f);
    CHECK_FALSE(moe.tied_fused);
  }
}

TEST_CASE("Tied models load back from the checkpoint and every export", "[compress][export][tied]") {
  auto dense = dense_model();
  compress::MoefyOptions o;
  o.method = "importance";
  o.experts = 4;
  o.expert_size = 16;
  o.shared = 8;
  o.shared_mode = "tied";
  o.router = "gate";
  o.top_k = 2;
  auto model = converted(o, *dense);
  for (Param* p : model->params())  // route tokens apart
    if (p->name.find("router.weight") != std::string::npos) p->value *= 50.0f;
  std::vector<int64_t> lengths;
  for (int i = 0; i < 100; ++i) lengths.push_back(3 + i % 17);
  const Batch b = tiny_batch(model->config, lengths, 62);
  const Mat ref = logits_of(*model, b);
  const fs::path dir = scratch_dir("tied");
  const io::Vocab vocab = synthetic_vocab();
  io::save_model(dir / "ckpt", *model, &vocab, true);
  {
    io::LoadedModel back = io::load_model(dir / "ckpt");
    CHECK(back.model->config.moe->shared_mode == "tied");
    REQUIRE(back.model->layers[0].moe->shared_expert);
    CHECK(logits_of(*back.model, b) == ref);
  }
  struct Case {
    std::string format, dtype, file;
  };
  for (const Case& c : {Case{"hdf5", "fp32", "t32.h5"}, Case{"safetensors", "fp32", "t32.safetensors"},
                        Case{"hdf5", "int8", "t8.h5"}}) {
    INFO(c.format << " " << c.dtype);
    compress::ExportOptions e;
    e.format = c.format;
    e.dtype = c.dtype;
    e.out = (dir / c.file).string();
    compress::export_model(*model, &vocab, true, e);
    io::LoadedModel back = io::load_model(e.out);
    REQUIRE(back.model->layers[1].moe->shared_expert);
    const Mat got = logits_of(*back.model, b);
    if (c.dtype == "fp32")
      CHECK(got == ref);
    else
      CHECK(agreeing_labels(ref, got) >= 0.97 * static_cast<double>(ref.rows()));
  }
}

TEST_CASE("moefy --method upcycle with expert-size = d_ff equals the dense model (hash, gate top-2)",
          "[compress][moefy][upcycle]") {
  auto dense = dense_model();
  const Batch b = tiny_batch(dense->config, {5, 12, 3, 20}, 7);
  const Mat want = logits_of(*dense, b);
  struct Case {
    const char* router;
    int top_k;
  };
  for (Case cs : {Case{"hash", 1}, Case{"gate", 2}, Case{"gate", 3}}) {
    INFO(cs.router << " top-" << cs.top_k);
    compress::MoefyOptions o;
    o.method = "upcycle";
    o.experts = 4;
    o.router = cs.router;
    o.top_k = cs.top_k;
    auto m = converted(o, *dense);
    CHECK(m->config.moe->expert_size == dense->config.intermediate_size);  // the default: full copies
    CHECK(m->config.moe->method == "upcycle");
    for (Param* p : m->params())
      if (p->name.find("router.weight") != std::string::npos) p->value *= 50.0f;  // routing that matters
    const Mat got = logits_of(*m, b);
    // hash: the same FFN (float round-off of differently packed products); top-k: weights
    // p_i / sum p_j sum to 1 up to round-off
    CHECK(rel_diff(got, want) <= (std::string(cs.router) == "hash" ? 1e-6 : 1e-5));
  }
  // A top-1 gate weighs by the raw probability: not the dense model (why the identity needs k >= 2).
  compress::MoefyOptions o;
  o.method = "upcycle";
  o.router = "gate";
  CHECK(rel_diff(logits_of(*converted(o, *dense), b), want) > 1e-3);
  // Narrower experts: the most important neurons, the same in every expert.
  o.expert_size = 16;
  auto narrow = converted(o, *dense);
  const auto& experts = narrow->layers[0].moe->experts;
  CHECK(experts[0].size() == 16);
  CHECK(experts[3].neuron_index == experts[0].neuron_index);
  const auto scores = fake_importance(dense->config, 5).layers[0];
  for (size_t i = 1; i < experts[0].neuron_index.size(); ++i)
    CHECK(scores[static_cast<size_t>(experts[0].neuron_index[i - 1])] >= scores[static_cast<size_t>(experts[0].neuron_index[i])]);
}

TEST_CASE("moefy option errors of the issue-19 variants", "[compress][moefy]") {
  const BertConfig c = small_config();
  compress::MoefyOptions o;
  o.method = "upcycle";
  o.expert_size = 16;
  CHECK_THROWS_WITH(compress::resolve_moefy_options(o, c), Catch::Contains("needs --importance"));
  o = {};
  o.method = "importance";
  o.importance = "x";
  o.shared_mode = "tied";
  o.expert_size = 16;
  o.shared = 16;
  CHECK_THROWS_WITH(compress::resolve_moefy_options(o, c), Catch::Contains("must be smaller than --expert-size"));
  o.shared = 4;
  o.share_every = 2;
  CHECK_THROWS_WITH(compress::resolve_moefy_options(o, c), Catch::Contains("not supported with Go-Wider"));
  o = {};
  o.method = "random";
  o.shared = 0;
  o.router = "gate-sentence";
  o.top_k = 2;
  CHECK_THROWS_WITH(compress::resolve_moefy_options(o, c), Catch::Contains("--top-k > 1 needs --router gate"));
  o.shared_mode = "glued";
  o.top_k = 1;
  CHECK_THROWS_WITH(compress::resolve_moefy_options(o, c), Catch::Contains("--shared-mode must be copy or tied"));
}

TEST_CASE("Router fitting (MoEfication): the gate learns the dense activations' best expert", "[compress][route-fit]") {
  auto dense = dense_model();
  std::vector<io::EncodedExample> examples;
  Rng rng(8);
  for (int i = 0; i < 40; ++i) {
    io::EncodedExample e;
    const int len = 4 + i % 9;
    for (int t = 0; t < len; ++t)
      e.ids.push_back(t == 0 ? 2 : static_cast<int32_t>(5 + rng.below(static_cast<uint64_t>(dense->config.vocab_size - 5))));
    e.type_ids.assign(e.ids.size(), 0);
    examples.push_back(std::move(e));
  }
  int64_t tokens = 0;
  for (const auto& e : examples) tokens += static_cast<int64_t>(e.ids.size());
  for (const char* router : {"gate", "gate-sentence"}) {
    INFO(router);
    compress::MoefyOptions o;
    o.method = "random";
    o.shared = 0;
    o.experts = 4;
    o.expert_size = 16;
    o.router = router;
    auto m = converted(o, *dense);
    compress::RouteFitOptions fo;
    fo.iterations = 200;
    const auto report = compress::fit_routers(*m, examples, fo);
    REQUIRE(report.size() == 2);
    for (const auto& r : report) {
      INFO("layer " << r.layer << ": " << r.agreement_before << " -> " << r.agreement_after);
      CHECK(r.rows == (std::string(router) == "gate" ? tokens : 40));
      CHECK(r.agreement_after > r.agreement_before);
      CHECK(r.agreement_after >= 0.8);
    }
  }
  auto hash = converted(compress::MoefyOptions{}, *dense);
  CHECK_THROWS_WITH(compress::fit_routers(*hash, examples, {}), Catch::Contains("needs a gate router"));
}
