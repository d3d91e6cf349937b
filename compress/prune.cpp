#include "compress/prune.h"

#include <algorithm>
#include <numeric>

#include "model/error.h"

namespace moekit::compress {

int64_t values_of(ExpertFFN& x) {
  ParamList list;
  x.collect(list);
  return static_cast<int64_t>(count_values(list));
}

PrunedExperts prune_unused_experts(BertModel& model, const std::vector<std::vector<int64_t>>& usage) {
  if (!model.config.moe) fail("", "--prune of experts needs an MoE model");
  if (usage.size() != model.layers.size()) fail("", "expert usage covers " + std::to_string(usage.size()) + " layers");
  PrunedExperts result;
  for (size_t l = 0; l < model.layers.size(); ++l) {
    EncoderLayer& layer = model.layers[l];
    if (!layer.moe || !layer.moe_owner) continue;
    MoeFFN& moe = *layer.moe;
    const size_t n = static_cast<size_t>(moe.n_experts());
    std::vector<int64_t> tokens(n, 0);  // over every layer running this MoE FFN
    for (size_t k = 0; k < model.layers.size(); ++k) {
      if (model.layers[k].moe != layer.moe) continue;
      if (usage[k].size() != n) fail("", "expert usage of layer " + std::to_string(k) + " has the wrong size");
      for (size_t e = 0; e < n; ++e) tokens[e] += usage[k][e];
    }
    std::vector<size_t> by_use(n);
    std::iota(by_use.begin(), by_use.end(), 0);
    std::stable_sort(by_use.begin(), by_use.end(), [&](size_t a, size_t b) { return tokens[a] > tokens[b]; });
    std::vector<bool> keep(n, false);
    for (size_t i = 0; i < n; ++i)
      keep[by_use[i]] = tokens[by_use[i]] > 0 || static_cast<int64_t>(i) < moe.top_k();
    if (std::all_of(keep.begin(), keep.end(), [](bool k) { return k; })) continue;

    PrunedExperts::Layer pruned{static_cast<int64_t>(l), {}};
    std::vector<int32_t> new_index(n, -1);
    std::vector<ExpertFFN> kept;
    for (size_t e = 0; e < n; ++e) {
      if (keep[e]) {
        new_index[e] = static_cast<int32_t>(kept.size());
        kept.push_back(std::move(moe.experts[e]));
      } else {
        pruned.removed.push_back(static_cast<int64_t>(e));
        result.parameters += values_of(moe.experts[e]);
      }
    }
    moe.experts = std::move(kept);
    if (auto* hash = std::get_if<HashRouter>(&moe.router)) {
      const int32_t busiest = new_index[by_use[0]];
      for (int32_t& e : hash->table) e = keep[static_cast<size_t>(e)] ? new_index[static_cast<size_t>(e)] : busiest;
    } else {
      GateRouter& gate = std::get<GateRouter>(moe.router);
      Mat rows(moe.n_experts(), gate.weight.value.cols());
      for (size_t e = 0; e < n; ++e)
        if (keep[e]) rows.row(new_index[e]) = gate.weight.value.row(static_cast<Eigen::Index>(e));
      result.parameters += gate.weight.value.size() - rows.size();
      gate.weight.value = std::move(rows);
      gate.weight.grad = Mat();  // allocated on first use
    }
    moe.rename(moe.prefix);
    result.layers.push_back(std::move(pruned));
  }
  if (result.layers.empty()) return result;
  MoeConfig& mc = *model.config.moe;
  mc.layer_experts.clear();
  for (int64_t l : mc.layers) mc.layer_experts.push_back(model.layers[static_cast<size_t>(l)].moe->n_experts());
  model.config.validate();
  return result;
}

}  // namespace moekit::compress
