#include "compress/moefy.h"

#include <algorithm>
#include <sstream>

#include "model/error.h"

namespace moekit::compress {

std::vector<int64_t> parse_layer_list(const std::string& text, int64_t num_layers) {
  std::vector<int64_t> layers;
  if (text.empty()) {
    for (int64_t i = 0; i < num_layers; ++i) layers.push_back(i);
    return layers;
  }
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0 || v >= num_layers)
      fail("", "--layers: \"" + item + "\" is not a layer index in [0, " + std::to_string(num_layers) + ")");
    layers.push_back(v);
  }
  std::sort(layers.begin(), layers.end());
  if (std::adjacent_find(layers.begin(), layers.end()) != layers.end()) fail("", "--layers lists a layer twice");
  return layers;
}

MoefyOptions resolve_moefy_options(const MoefyOptions& in, const BertConfig& c) {
  MoefyOptions o = in;
  const int ffn = static_cast<int>(c.intermediate_size);
  if (o.expert_size == 0) o.expert_size = ffn / 4;
  if (o.shared < 0) o.shared = o.method == "importance" ? ffn / 6 : 0;
  if (o.method != "importance" && o.method != "cluster" && o.method != "random")
    fail("", "--method must be importance, cluster or random, got " + o.method);
  if (o.router != "hash" && o.router != "hash-balance" && o.router != "gate")
    fail("", "--router must be hash, hash-balance or gate, got " + o.router);
  if (o.top_k < 1 || o.top_k > o.experts) fail("", "--top-k must be in [1, --experts]");
  if (o.router != "gate" && o.top_k != 1) fail("", "--top-k > 1 needs --router gate (a hash router picks one expert)");
  if (o.method == "importance" && o.importance.empty())
    fail("", "--method importance needs --importance FILE (from `moekit importance`)");
  if (o.router == "hash-balance" && o.data.empty()) fail("", "--router hash-balance needs --data (token counts)");
  check_split_sizes(ffn, o.experts, o.expert_size, o.shared, o.method);
  return o;
}

std::vector<SplitPlan> moefy(BertModel& model, const MoefyOptions& o, const Importance* importance,
                             const std::vector<int64_t>* token_counts) {
  const BertConfig& c = model.config;
  const std::vector<int64_t> layers = parse_layer_list(o.layers, c.num_hidden_layers);
  if (o.method == "importance") {
    if (!importance) fail("", "--method importance needs importance scores");
    if (importance->layers.size() != model.layers.size())
      fail(o.importance, "scores " + std::to_string(importance->layers.size()) + " layers, the model has " +
                             std::to_string(model.layers.size()) + " (an importance file for another model?)");
  }
  std::vector<SplitPlan> plans;
  for (int64_t l : layers) {
    EncoderLayer& layer = model.layers[static_cast<size_t>(l)];
    if (layer.is_moe()) fail(o.model, "layer " + std::to_string(l) + " is already an MoE layer");
    const uint64_t layer_seed = o.seed * 1000003ULL + static_cast<uint64_t>(l);
    SplitPlan plan;
    if (o.method == "importance") {
      const auto& scores = importance->layers[static_cast<size_t>(l)];
      if (static_cast<int64_t>(scores.size()) != c.intermediate_size)
        fail(o.importance, "layer " + std::to_string(l) + " has " + std::to_string(scores.size()) +
                               " scores, the model's FFN has " + std::to_string(c.intermediate_size) +
                               " neurons (an importance file for another model?)");
      plan = plan_importance(scores, o.experts, o.expert_size, o.shared);
    } else if (o.method == "cluster") {
      plan = plan_cluster(layer.ffn.intermediate.weight.value, o.experts, o.expert_size, layer_seed);
    } else {
      plan = plan_random(static_cast<int>(c.intermediate_size), o.experts, o.expert_size, layer_seed);
    }
    Router router;
    if (o.router == "gate") {
      GateRouter gate;
      gate.init(layer.ffn.intermediate.weight.name, c.hidden_size, o.experts, o.top_k);  // renamed by from_dense
      Rng rng(layer_seed ^ 0x6a7e);
      for (Eigen::Index i = 0; i < gate.weight.value.size(); ++i)
        gate.weight.value.data()[i] = static_cast<float>(rng.normal() * c.initializer_range);
      router = std::move(gate);
    } else if (o.router == "hash-balance") {
      if (!token_counts || static_cast<int64_t>(token_counts->size()) != c.vocab_size)
        fail(o.data, "token counts do not cover the vocabulary");
      router = HashRouter{make_balanced_hash_table(*token_counts, o.experts)};
    } else {
      router = HashRouter{make_hash_table(c.vocab_size, o.experts, layer_seed)};
    }
    layer.set_moe(MoeFFN::from_dense(layer.ffn, plan.experts, std::move(router)));
    plans.push_back(std::move(plan));
  }
  MoeConfig moe;
  moe.n_experts = o.experts;
  moe.expert_size = o.expert_size;
  moe.shared = o.shared;
  moe.method = o.method;
  moe.router = o.router;
  moe.top_k = o.top_k;
  moe.layers = layers;
  model.config.moe = moe;
  return plans;
}

}  // namespace moekit::compress
