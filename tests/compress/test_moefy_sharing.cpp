// moefy with Go-Wider sharing: a group's experts are slices of its layers' FFNs (layer i of the
// group gives its share of the experts, in group order), each layer keeps its LayerNorms,
// attention is shared as the mean or the first layer's, the option errors, and a shared model
// survives export.
#include <catch2/catch.hpp>

#include "compress/export.h"
#include "compress/moefy.h"
#include "io/checkpoint.h"
#include "tests/support/synthetic_task.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_model.h"

using namespace moekit;
using namespace moekit::test;

namespace {

std::unique_ptr<BertModel> dense_model() {
  BertConfig c = tiny_config();
  c.num_hidden_layers = 4;
  auto m = std::make_unique<BertModel>(c);
  randomize(*m, 17, 0.3);
  return m;
}

compress::MoefyOptions sharing_options(const std::string& groups, const std::string& attention) {
  compress::MoefyOptions o;
  o.method = "random";
  o.experts = 4;
  o.expert_size = 8;
  o.shared = 0;
  o.share_groups = groups;
  o.share_attention = attention;
  return o;
}

}  // namespace

TEST_CASE("moefy --share-groups pools slices of the group's FFNs into one MoE FFN", "[compress][sharing]") {
  for (const std::string attention : {"", "mean", "first"}) {
    INFO("share_attention " << attention);
    auto dense = dense_model();
    auto m = dense_model();  // same seed: equal to `dense`
    const auto o = compress::resolve_moefy_options(sharing_options("0-1,2-3", attention), m->config);
    CHECK(o.router == "gate");
    CHECK(o.norm == "layer");
    const auto plans = compress::moefy(*m, o, nullptr, nullptr);
    CHECK(plans.size() == 4);  // one split per source layer
    const MoeConfig& mc = *m->config.moe;
    CHECK(mc.share_groups == std::vector<std::vector<int64_t>>{{0, 1}, {2, 3}});
    CHECK(mc.share_attention == !attention.empty());
    for (size_t owner : {0u, 2u}) {
      const EncoderLayer& first = m->layers[owner];
      const EncoderLayer& second = m->layers[owner + 1];
      REQUIRE(first.moe);
      CHECK(second.moe == first.moe);
      CHECK(first.moe_owner);
      CHECK_FALSE(second.moe_owner);
      CHECK(first.moe->n_experts() == 4);
      CHECK(first.moe->experts[0].intermediate.weight.name ==
            "bert.encoder.layer." + std::to_string(owner) + ".moe.experts.0.intermediate.dense.weight");
      CHECK(first.moe->experts[3].output.weight.name ==
            "bert.encoder.layer." + std::to_string(owner) + ".moe.experts.3.output.dense.weight");
      for (int e = 0; e < 4; ++e) {
        const ExpertFFN& x = first.moe->experts[static_cast<size_t>(e)];
        CHECK_FALSE(x.has_norm);
        const DenseFFN& src = dense->layers[owner + static_cast<size_t>(e / 2)].ffn;  // experts 0,1 <- first layer
        for (size_t i = 0; i < x.neuron_index.size(); ++i) {
          const int32_t j = x.neuron_index[i];
          CHECK(x.intermediate.weight.value.row(static_cast<Eigen::Index>(i)) == src.intermediate.weight.value.row(j));
          CHECK(x.output.weight.value.col(static_cast<Eigen::Index>(i)) == src.output.weight.value.col(j));
        }
        CHECK(x.output.bias.value == src.output.bias.value);
      }
      for (size_t l : {owner, owner + 1}) {  // each layer keeps its own LayerNorms
        CHECK(m->layers[l].moe_norm.weight.value == dense->layers[l].ffn.norm.weight.value);
        CHECK(m->layers[l].attention.norm.weight.value == dense->layers[l].attention.norm.weight.value);
      }
      const Mat& q0 = dense->layers[owner].attention.query.weight.value;
      const Mat& q1 = dense->layers[owner + 1].attention.query.weight.value;
      if (attention.empty()) {
        CHECK(second.attention.shared == nullptr);
        CHECK(second.attention.query.weight.value == q1);
      } else {
        CHECK(second.attention.shared == &first.attention);
        CHECK(second.attention.query.weight.value.size() == 0);  // released
        if (attention == "first") CHECK(first.attention.query.weight.value == q0);
        else CHECK(first.attention.query.weight.value.isApprox((q0 + q1) / 2.0f, 1e-6f));
      }
    }
    const ParamCounts pc = count_params(*m);
    CHECK(pc.total + pc.shared_uses > pc.total);
    const Batch b = tiny_batch(m->config, {5, 8}, 3);
    CHECK(m->forward(b, nullptr, nullptr).logits.allFinite());
  }
}

TEST_CASE("moefy --share-every K groups consecutive MoE layers", "[compress][sharing]") {
  auto m = dense_model();
  compress::MoefyOptions o = sharing_options("", "");
  o.share_every = 3;
  o.experts = 3;
  const auto groups = compress::parse_share_groups(o.share_groups, o.share_every, {0, 1, 2, 3});
  CHECK(groups == std::vector<std::vector<int64_t>>{{0, 1, 2}});  // the leftover layer 3 stays unshared
  o.share_every = 2;
  CHECK(compress::parse_share_groups(o.share_groups, o.share_every, {0, 1, 3}) == std::vector<std::vector<int64_t>>{{0, 1}});
  o.share_every = 0;
  o.share_groups = "0+2,1+3";
  CHECK(compress::parse_share_groups(o.share_groups, o.share_every, {0, 1, 2, 3}) == std::vector<std::vector<int64_t>>{{0, 2}, {1, 3}});
  o.share_groups.clear();
  o.share_every = 3;
  compress::moefy(*m, compress::resolve_moefy_options(o, m->config), nullptr, nullptr);
  CHECK(m->layers[2].moe == m->layers[0].moe);
  CHECK(m->layers[3].moe != m->layers[0].moe);
  CHECK(m->layers[3].moe->n_experts() == 3);  // unshared layer-norm MoE, all experts from layer 3
  CHECK_FALSE(m->layers[3].moe->experts[0].has_norm);
}

TEST_CASE("moefy sharing options give one-line errors", "[compress][sharing]") {
  auto m = dense_model();
  auto bad = [&](compress::MoefyOptions o, const char* what) {
    REQUIRE_THROWS_WITH(compress::resolve_moefy_options(o, m->config), Catch::Contains(what));
  };
  auto o = sharing_options("0-1", "");
  o.share_every = 2;
  bad(o, "not both");
  bad(sharing_options("0-1,1-2", ""), "a layer is in two groups");
  bad(sharing_options("2", ""), "has one layer");
  bad(sharing_options("1-0", ""), "not an increasing range");
  bad(sharing_options("0-x", ""), "\"x\" is not a layer index");
  o = sharing_options("0-1", "");
  o.layers = "0,2,3";
  bad(o, "layer 1 is not one of the layers converted");
  o = sharing_options("0-3", "");
  o.experts = 3;
  bad(o, "fewer than the 4 layers");
  o = sharing_options("0-1", "");
  o.norm = "expert";
  bad(o, "--norm expert cannot be shared");
  bad(sharing_options("", "mean"), "--share-attention needs --share-groups");
  bad(sharing_options("0-1", "last"), "--share-attention must be mean or first");
  o = sharing_options("", "");
  o.share_every = 1;
  bad(o, "shares nothing");
}

TEST_CASE("A shared model exports and loads back exactly (fp32)", "[compress][sharing][export]") {
  auto m = dense_model();
  compress::moefy(*m, compress::resolve_moefy_options(sharing_options("0-1,2-3", "mean"), m->config), nullptr,
                  nullptr);
  const io::Vocab vocab = synthetic_vocab();
  const Batch b = tiny_batch(m->config, {7, 4, 9}, 8);
  const Mat ref = m->forward(b, nullptr, nullptr).logits;
  const auto dir = scratch_dir("export_shared");
  for (const char* format : {"hdf5", "safetensors"}) {
    INFO(format);
    compress::ExportOptions eo;
    eo.format = format;
    eo.dtype = "fp32";
    eo.out = (dir / (std::string("m.") + (eo.format == "hdf5" ? "h5" : "safetensors"))).string();
    const auto summary = compress::export_model(*m, &vocab, true, eo);
    CHECK(summary.tensors == m->params().size() + m->index_params().size());
    io::LoadedModel back = io::load_model(eo.out);
    CHECK(back.model->layers[1].attention.shared == &back.model->layers[0].attention);
    CHECK(back.model->forward(b, nullptr, nullptr).logits == ref);
  }
}
