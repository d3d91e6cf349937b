#include "compress/moefy.h"

#include <algorithm>

#include "model/error.h"

namespace moekit::compress {

namespace {

bool sharing(const MoefyOptions& o) { return !o.share_groups.empty() || o.share_every > 0; }

std::string router_of(const MoefyOptions& o) { return o.router.empty() ? (sharing(o) ? "gate" : "hash") : o.router; }

// The gate router of `n` experts, N(0, initializer_range) like a new linear layer.
GateRouter new_gate(const BertConfig& c, int n, int top_k, uint64_t seed, bool sentence = false) {
  GateRouter gate;
  gate.init("router.weight", c.hidden_size, n, top_k);  // renamed by from_dense / MoeFFN::rename
  gate.sentence = sentence;
  Rng rng(seed ^ 0x6a7e);
  for (Eigen::Index i = 0; i < gate.weight.value.size(); ++i)
    gate.weight.value.data()[i] = static_cast<float>(rng.normal() * c.initializer_range);
  return gate;
}

// Element-wise mean of the group's attention projections into the first layer's.
void average_attention(BertModel& model, const std::vector<int64_t>& group) {
  Attention& first = model.layers[static_cast<size_t>(group.front())].attention;
  for (Linear Attention::*proj : {&Attention::query, &Attention::key, &Attention::value, &Attention::out}) {
    Linear& dst = first.*proj;
    for (size_t i = 1; i < group.size(); ++i) {
      const Linear& src = model.layers[static_cast<size_t>(group[i])].attention.*proj;
      dst.weight.value += src.weight.value;
      dst.bias.value += src.bias.value;
    }
    dst.weight.value /= static_cast<float>(group.size());
    dst.bias.value /= static_cast<float>(group.size());
  }
}

}  // namespace


MoefyOptions resolve_moefy_options(const MoefyOptions& in, const BertConfig& c) {
  MoefyOptions o = in;
  const int ffn = static_cast<int>(c.intermediate_size);
  if (o.expert_size == 0) o.expert_size = o.method == "upcycle" ? ffn : ffn / 4;
  if (o.shared < 0) o.shared = o.method == "importance" ? ffn / 6 : 0;
  if (o.method != "importance" && o.method != "cluster" && o.method != "random" && o.method != "upcycle")
    fail("", "--method must be importance, cluster, random or upcycle, got " + o.method);
  o.router = router_of(o);
  if (o.router != "hash" && o.router != "hash-balance" && o.router != "gate" && o.router != "gate-sentence")
    fail("", "--router must be hash, hash-balance, gate or gate-sentence, got " + o.router);
  if (o.top_k < 1 || o.top_k > o.experts) fail("", "--top-k must be in [1, --experts]");
  if (o.router != "gate" && o.top_k != 1)
    fail("", "--top-k > 1 needs --router gate (hash routers and the sentence gate pick one expert)");
  if (o.method == "importance" && o.importance.empty())
    fail("", "--method importance needs --importance FILE (from `moekit importance`)");
  if (o.method == "upcycle" && o.expert_size < ffn && o.importance.empty())
    fail("", "--method upcycle with --expert-size below intermediate_size (" + std::to_string(ffn) +
                 ") needs --importance FILE (the experts keep the most important neurons)");
  if (!o.fit_router.empty() && o.router != "gate" && o.router != "gate-sentence")
    fail("", "--fit-router needs --router gate or gate-sentence (a hash table is not fitted)");
  if (o.fit_examples < 1) fail("", "--fit-examples must be positive");
  if (o.shared_mode != "copy" && o.shared_mode != "tied")
    fail("", "--shared-mode must be copy or tied, got " + o.shared_mode);
  if (o.shared_mode == "tied" && o.shared >= o.expert_size)
    fail("", "--shared-mode tied: --shared " + std::to_string(o.shared) + " must be smaller than --expert-size " +
                 std::to_string(o.expert_size) + " (the experts keep expert_size - shared routed neurons)");
  if (o.shared_mode == "tied" && sharing(o)) fail("", "--shared-mode tied is not supported with Go-Wider sharing");
  if (o.router == "hash-balance" && o.data.empty()) fail("", "--router hash-balance needs --data (token counts)");
  if (o.norm.empty()) o.norm = sharing(o) ? "layer" : "expert";
  if (o.norm != "expert" && o.norm != "layer") fail("", "--norm must be expert or layer, got " + o.norm);
  if (sharing(o) && o.norm != "layer")
    fail("", "--norm expert cannot be shared: each layer of a group keeps its own LayerNorm (use --norm layer)");
  if (!o.share_attention.empty() && o.share_attention != "mean" && o.share_attention != "first")
    fail("", "--share-attention must be mean or first, got " + o.share_attention);
  if (!o.share_attention.empty() && !sharing(o)) fail("", "--share-attention needs --share-groups or --share-every");
  const auto groups = parse_share_groups(o.share_groups, o.share_every, parse_layer_list(o.layers, c.num_hidden_layers));
  if (sharing(o) && groups.empty()) fail("", "--share-every " + std::to_string(o.share_every) + " forms no group of two layers");
  size_t largest = 1;
  for (const auto& g : groups) largest = std::max(largest, g.size());
  if (o.experts < static_cast<int>(largest))
    fail("", "--experts " + std::to_string(o.experts) + " is fewer than the " + std::to_string(largest) +
                 " layers of a sharing group (each layer gives at least one expert)");
  // Each layer of a group is split into its share of the experts; the first one gets the most.
  check_split_sizes(ffn, (o.experts + static_cast<int>(largest) - 1) / static_cast<int>(largest), o.expert_size,
                    o.shared, o.method);
  return o;
}

std::vector<SplitPlan> moefy(BertModel& model, const MoefyOptions& o, const Importance* importance,
                             const std::vector<int64_t>* token_counts) {
  const BertConfig& c = model.config;
  const std::vector<int64_t> layers = parse_layer_list(o.layers, c.num_hidden_layers);
  const auto groups = parse_share_groups(o.share_groups, o.share_every, layers);
  const std::string router = router_of(o);
  const bool layer_norm = o.norm == "layer" || (o.norm.empty() && !groups.empty());
  const bool scored = o.method == "importance" || (o.method == "upcycle" && o.expert_size < c.intermediate_size);
  if (scored) {
    if (!importance) fail("", "--method " + o.method + " needs importance scores");
    if (importance->layers.size() != model.layers.size())
      fail(o.importance, "scores " + std::to_string(importance->layers.size()) + " layers, the model has " +
                             std::to_string(model.layers.size()) + " (an importance file for another model?)");
  }
  // Splits layer l's FFN into n experts.
  auto plan_layer = [&](int64_t l, int n) {
    const EncoderLayer& layer = model.layers[static_cast<size_t>(l)];
    if (layer.is_moe()) fail(o.model, "layer " + std::to_string(l) + " is already an MoE layer");
    const uint64_t layer_seed = o.seed * 1000003ULL + static_cast<uint64_t>(l);
    if (scored) {
      const auto& scores = importance->layers[static_cast<size_t>(l)];
      if (static_cast<int64_t>(scores.size()) != c.intermediate_size)
        fail(o.importance, "layer " + std::to_string(l) + " has " + std::to_string(scores.size()) +
                               " scores, the model's FFN has " + std::to_string(c.intermediate_size) +
                               " neurons (an importance file for another model?)");
      if (o.method == "upcycle") return plan_upcycle(&scores, static_cast<int>(c.intermediate_size), n, o.expert_size);
      return plan_importance(scores, n, o.expert_size, o.shared);
    }
    if (o.method == "upcycle") return plan_upcycle(nullptr, static_cast<int>(c.intermediate_size), n, o.expert_size);
    if (o.method == "cluster") return plan_cluster(layer.ffn.intermediate.weight.value, n, o.expert_size, layer_seed);
    return plan_random(static_cast<int>(c.intermediate_size), n, o.expert_size, layer_seed);
  };
  auto make_router = [&](int64_t l) -> Router {
    const uint64_t layer_seed = o.seed * 1000003ULL + static_cast<uint64_t>(l);
    if (router == "gate" || router == "gate-sentence")
      return new_gate(c, o.experts, o.top_k, layer_seed, router == "gate-sentence");
    if (router == "hash-balance") {
      if (!token_counts || static_cast<int64_t>(token_counts->size()) != c.vocab_size)
        fail(o.data, "token counts do not cover the vocabulary");
      return HashRouter{make_balanced_hash_table(*token_counts, o.experts)};
    }
    return HashRouter{make_hash_table(c.vocab_size, o.experts, layer_seed)};
  };
  auto group_of = [&](int64_t l) -> const std::vector<int64_t>* {
    for (const auto& g : groups)
      if (std::find(g.begin(), g.end(), l) != g.end()) return &g;
    return nullptr;
  };

  std::vector<SplitPlan> plans;
  std::vector<std::pair<int64_t, MoeFFN>> built;  // attached after every split (slices read dense FFNs)
  for (int64_t l : layers) {
    const auto* group = group_of(l);
    if (!group) {
      SplitPlan plan = plan_layer(l, o.experts);
      built.emplace_back(l, MoeFFN::from_dense(model.layers[static_cast<size_t>(l)].ffn, plan.experts, make_router(l),
                                               !layer_norm, o.shared_mode == "tied" ? o.shared : 0));
      plans.push_back(std::move(plan));
      continue;
    }
    if (group->front() != l) continue;  // built with its group's first layer
    const int g = static_cast<int>(group->size());
    MoeFFN pooled;
    for (int i = 0; i < g; ++i) {
      const int64_t src = (*group)[static_cast<size_t>(i)];
      SplitPlan plan = plan_layer(src, o.experts / g + (i < o.experts % g ? 1 : 0));
      MoeFFN part = MoeFFN::from_dense(model.layers[static_cast<size_t>(src)].ffn, plan.experts, HashRouter{}, false);
      if (i == 0) pooled = std::move(part);
      else
        for (ExpertFFN& x : part.experts) pooled.experts.push_back(std::move(x));
      plans.push_back(std::move(plan));
    }
    pooled.router = make_router(l);
    pooled.rename(pooled.prefix);
    built.emplace_back(l, std::move(pooled));
  }
  if (o.share_attention == "mean")
    for (const auto& g : groups) average_attention(model, g);
  for (auto& [l, ffn] : built) model.layers[static_cast<size_t>(l)].set_moe(std::move(ffn));
  MoeConfig moe;
  moe.n_experts = o.experts;
  moe.expert_size = o.expert_size;
  moe.shared = o.shared;
  moe.method = o.method;
  moe.shared_mode = o.shared_mode;
  moe.router = router;
  moe.top_k = o.top_k;
  moe.layers = layers;
  moe.norm = layer_norm ? "layer" : "expert";
  moe.share_groups = groups;
  moe.share_attention = !o.share_attention.empty();
  model.config.moe = moe;
  model.config.validate();
  model.link_shared();  // later group layers: the owner's MoE FFN (and attention), their own LayerNorms
  return plans;
}

}  // namespace moekit::compress
