#include "compress/expert_merge.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "compress/prune.h"
#include "model/error.h"
#include "model/matmul.h"

namespace moekit::compress {

namespace {

// Cosine similarity of the experts' feature vectors (equal lengths).
Mat cosine(const std::vector<std::vector<float>>& f) {
  const auto n = static_cast<Eigen::Index>(f.size());
  Mat s = Mat::Identity(n, n);
  for (Eigen::Index a = 0; a < n; ++a)
    for (Eigen::Index b = a + 1; b < n; ++b) {
      const Eigen::Map<const Eigen::VectorXf> x(f[static_cast<size_t>(a)].data(), static_cast<Eigen::Index>(f[static_cast<size_t>(a)].size()));
      const Eigen::Map<const Eigen::VectorXf> y(f[static_cast<size_t>(b)].data(), static_cast<Eigen::Index>(f[static_cast<size_t>(b)].size()));
      const float d = x.norm() * y.norm();
      s(a, b) = s(b, a) = d > 0 ? x.dot(y) / d : 0.0f;
    }
  return s;
}

// One row per neuron of the expert: [W1 row, b1, W2 column], what alignment matches on.
Mat neuron_features(const ExpertFFN& x) {
  const Eigen::Index size = x.size(), h = x.intermediate.in();
  Mat f(size, 2 * h + 1);
  f.leftCols(h) = x.intermediate.weight.value;
  f.col(h) = x.intermediate.bias.value.row(0).transpose();
  f.rightCols(h) = x.output.weight.value.transpose();
  return f;
}

// Replaces the layer's experts by one per group. group_of[e]: the group of old expert e; members[g]:
// the old experts averaged into group g (first = dominant, whose router row the gate keeps), each
// weighted by weight[e] (aligned to the dominant's neurons first).
int64_t regroup(MoeFFN& moe, const std::vector<int32_t>& group_of, const std::vector<std::vector<int32_t>>& members,
                const std::vector<double>& weight) {
  int64_t before = 0, after = 0;
  for (ExpertFFN& x : moe.experts) before += values_of(x);
  std::vector<ExpertFFN> out;
  for (const auto& group : members) {
    ExpertFFN merged = moe.experts[static_cast<size_t>(group[0])];
    if (group.size() > 1) {
      double total = 0;
      for (int32_t e : group) total += weight[static_cast<size_t>(e)];
      const bool uniform = total <= 0;
      if (uniform) total = static_cast<double>(group.size());
      const Mat anchor = neuron_features(merged);
      ParamList acc;
      merged.collect(acc);
      for (Param* p : acc) p->value.setZero();
      for (int32_t e : group) {
        const ExpertFFN& m = moe.experts[static_cast<size_t>(e)];
        const auto w = static_cast<float>((uniform ? 1.0 : weight[static_cast<size_t>(e)]) / total);
        Mat score;
        matmul_nt(anchor, neuron_features(m), score);
        const std::vector<int32_t> perm = max_assignment(score);  // anchor neuron i <- m's perm[i]
        for (Eigen::Index i = 0; i < merged.size(); ++i) {
          const Eigen::Index j = perm[static_cast<size_t>(i)];
          merged.intermediate.weight.value.row(i) += w * m.intermediate.weight.value.row(j);
          merged.intermediate.bias.value(0, i) += w * m.intermediate.bias.value(0, j);
          merged.output.weight.value.col(i) += w * m.output.weight.value.col(j);
        }
        merged.output.bias.value += w * m.output.bias.value;
        if (merged.has_norm) {
          merged.norm.weight.value += w * m.norm.weight.value;
          merged.norm.bias.value += w * m.norm.bias.value;
        }
      }
      std::fill(merged.neuron_index.begin(), merged.neuron_index.end(), -1);  // no single provenance
    }
    after += values_of(merged);
    out.push_back(std::move(merged));
  }
  int64_t removed = before - after;
  if (auto* hash = std::get_if<HashRouter>(&moe.router)) {
    for (int32_t& e : hash->table) e = group_of[static_cast<size_t>(e)];
  } else {
    GateRouter& gate = std::get<GateRouter>(moe.router);
    Mat rows(static_cast<Eigen::Index>(members.size()), gate.weight.value.cols());
    for (size_t g = 0; g < members.size(); ++g) rows.row(static_cast<Eigen::Index>(g)) = gate.weight.value.row(members[g][0]);
    removed += gate.weight.value.size() - rows.size();
    gate.weight.value = std::move(rows);
    gate.weight.grad = Mat();
  }
  moe.experts = std::move(out);
  moe.rename(moe.prefix);
  return removed;
}

// Experts of a layer sorted by score, highest first (ties: lower index).
std::vector<int32_t> ranked(const std::vector<double>& score) {
  std::vector<int32_t> order(score.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)]; });
  return order;
}

// Groups from the kept (dominant) experts: every other expert goes to its most similar kept one.
std::vector<int32_t> nearest_group(const ExpertCalibration::Layer& cal, const std::vector<int32_t>& kept) {
  const size_t n = cal.usage.size();
  std::vector<int32_t> group_of(n, -1);
  for (size_t g = 0; g < kept.size(); ++g) group_of[static_cast<size_t>(kept[g])] = static_cast<int32_t>(g);
  for (size_t e = 0; e < n; ++e) {
    if (group_of[e] >= 0) continue;
    size_t best = 0;
    for (size_t g = 1; g < kept.size(); ++g)
      if (cal.similarity(static_cast<Eigen::Index>(e), kept[g]) > cal.similarity(static_cast<Eigen::Index>(e), kept[best])) best = g;
    group_of[e] = static_cast<int32_t>(best);
  }
  return group_of;
}

template <class F>
int64_t reduce_layers(BertModel& model, const ExpertCalibration& cal, int64_t k, const std::string& what, F&& per_layer) {
  if (!model.config.moe) fail("", what + " needs an MoE model");
  if (!model.config.moe->share_groups.empty()) fail("", what + " does not support Go-Wider shared MoE FFNs yet");
  if (cal.layers.size() != model.layers.size()) fail("", what + ": calibration covers another model");
  int64_t removed = 0;
  for (size_t l = 0; l < model.layers.size(); ++l) {
    if (!model.layers[l].moe) continue;
    MoeFFN& moe = *model.layers[l].moe;
    if (k < moe.top_k()) fail("", what + " " + std::to_string(k) + " is below top_k " + std::to_string(moe.top_k()));
    if (k >= moe.n_experts()) continue;
    removed += per_layer(moe, cal.layers[l]);
  }
  MoeConfig& mc = *model.config.moe;
  mc.layer_experts.clear();
  for (int64_t l : mc.layers) mc.layer_experts.push_back(model.layers[static_cast<size_t>(l)].moe->n_experts());
  model.config.validate();
  return removed;
}

}  // namespace

std::vector<int32_t> max_assignment(const Mat& score) {
  // Jonker-Volgenant style shortest augmenting paths with potentials, on cost = -score (1-based).
  const int n = static_cast<int>(score.rows());
  check(score.cols() == n, "", "max_assignment: expected a square matrix");
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(static_cast<size_t>(n) + 1, 0), v(static_cast<size_t>(n) + 1, 0);
  std::vector<int> p(static_cast<size_t>(n) + 1, 0), way(static_cast<size_t>(n) + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(static_cast<size_t>(n) + 1, inf);
    std::vector<char> used(static_cast<size_t>(n) + 1, 0);
    do {
      used[static_cast<size_t>(j0)] = 1;
      const int i0 = p[static_cast<size_t>(j0)];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= n; ++j) {
        if (used[static_cast<size_t>(j)]) continue;
        const double cur = -static_cast<double>(score(i0 - 1, j - 1)) - u[static_cast<size_t>(i0)] - v[static_cast<size_t>(j)];
        if (cur < minv[static_cast<size_t>(j)]) {
          minv[static_cast<size_t>(j)] = cur;
          way[static_cast<size_t>(j)] = j0;
        }
        if (minv[static_cast<size_t>(j)] < delta) {
          delta = minv[static_cast<size_t>(j)];
          j1 = j;
        }
      }
      for (int j = 0; j <= n; ++j) {
        if (used[static_cast<size_t>(j)]) {
          u[static_cast<size_t>(p[static_cast<size_t>(j)])] += delta;
          v[static_cast<size_t>(j)] -= delta;
        } else {
          minv[static_cast<size_t>(j)] -= delta;
        }
      }
      j0 = j1;
    } while (p[static_cast<size_t>(j0)] != 0);
    do {
      const int j1 = way[static_cast<size_t>(j0)];
      p[static_cast<size_t>(j0)] = p[static_cast<size_t>(j1)];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int32_t> result(static_cast<size_t>(n), 0);
  for (int j = 1; j <= n; ++j) result[static_cast<size_t>(p[static_cast<size_t>(j)] - 1)] = j - 1;
  return result;
}

ExpertCalibration calibrate_experts(const BertModel& model, const std::vector<io::EncodedExample>& examples,
                                    size_t batch_size, int64_t max_tokens) {
  if (!model.config.moe) fail("", "expert calibration needs an MoE model");
  if (examples.empty()) fail("", "expert calibration needs at least one example");
  const size_t n_layers = model.layers.size();
  ExpertCalibration cal;
  cal.layers.resize(n_layers);
  std::vector<std::vector<double>> reap_count(n_layers);
  std::vector<std::vector<std::vector<float>>> features(n_layers);
  std::vector<int64_t> feature_tokens(n_layers, 0);
  for (size_t l = 0; l < n_layers; ++l) {
    if (!model.layers[l].moe) continue;
    const auto n = static_cast<size_t>(model.layers[l].moe->n_experts());
    cal.layers[l].layer = static_cast<int64_t>(l);
    cal.layers[l].usage.assign(n, 0.0);
    cal.layers[l].reap.assign(n, 0.0);
    reap_count[l].assign(n, 0.0);
    features[l].assign(n, {});
  }
  for (const auto& idx : io::length_grouped_batches(examples, batch_size)) {
    const Batch b = io::make_batch(examples, idx, static_cast<int32_t>(model.config.pad_token_id));
    const Outputs out = model.forward(b, nullptr, nullptr, true);
    for (size_t l = 0; l < n_layers; ++l) {
      if (!model.layers[l].moe) continue;
      const MoeFFN& moe = *model.layers[l].moe;
      auto& c = cal.layers[l];
      Mat a;
      model.layers[l].attention.forward(out.hidden_states[l], b, a, nullptr, nullptr);
      const Routing r = moe.route(a, b, nullptr);
      Mat logits;
      if (const auto* gate = std::get_if<GateRouter>(&moe.router)) matmul_nt(a, gate->weight.value, logits);
      std::vector<int32_t> real;
      for (int64_t t = 0; t < b.n_tok(); ++t)
        if (b.mask[static_cast<size_t>(t)]) real.push_back(static_cast<int32_t>(t));
      const auto take = static_cast<size_t>(std::clamp<int64_t>(max_tokens - feature_tokens[l], 0, static_cast<int64_t>(real.size())));
      feature_tokens[l] += static_cast<int64_t>(take);
      for (size_t e = 0; e < c.usage.size(); ++e) {
        const ExpertFFN& x = moe.experts[e];
        Mat f;
        x.ffn_part(a, f);
        f.rowwise() += x.output.bias.value.row(0);
        c.usage[e] += static_cast<double>(r.load[e]);
        for (size_t i = 0; i < r.tokens[e].size(); ++i) {
          const int32_t t = r.tokens[e][i];
          if (!b.mask[static_cast<size_t>(t)]) continue;
          c.reap[e] += static_cast<double>(r.weight[static_cast<size_t>(r.slots[e][i])]) * f.row(t).norm();
          reap_count[l][e] += 1;
        }
        auto& feat = features[l][e];
        for (size_t i = 0; i < take; ++i) {
          if (logits.size() > 0) {
            feat.push_back(logits(real[i], static_cast<Eigen::Index>(e)));
          } else {
            const auto row = f.row(real[i]);
            feat.insert(feat.end(), row.data(), row.data() + row.size());
          }
        }
      }
    }
  }
  for (size_t l = 0; l < n_layers; ++l) {
    auto& c = cal.layers[l];
    if (c.layer < 0) continue;
    for (size_t e = 0; e < c.reap.size(); ++e) c.reap[e] = reap_count[l][e] > 0 ? c.reap[e] / reap_count[l][e] : 0.0;
    c.similarity = cosine(features[l]);
  }
  return cal;
}

int64_t prune_experts_to(BertModel& model, const ExpertCalibration& cal, int64_t k, const std::string& criterion) {
  if (criterion != "usage" && criterion != "reap")
    fail("", "--criterion must be usage or reap, got " + criterion);
  return reduce_layers(model, cal, k, "--prune-experts", [&](MoeFFN& moe, const ExpertCalibration::Layer& c) {
    std::vector<int32_t> kept = ranked(criterion == "usage" ? c.usage : c.reap);
    kept.resize(static_cast<size_t>(k));
    std::sort(kept.begin(), kept.end());  // keep expert order
    std::vector<std::vector<int32_t>> members;
    for (int32_t e : kept) members.push_back({e});
    return regroup(moe, nearest_group(c, kept), members, c.usage);
  });
}

int64_t merge_experts_to(BertModel& model, const ExpertCalibration& cal, int64_t k) {
  return reduce_layers(model, cal, k, "--merge-experts", [&](MoeFFN& moe, const ExpertCalibration::Layer& c) {
    std::vector<int32_t> kept = ranked(c.usage);  // MC-SMoE: the most used experts dominate
    kept.resize(static_cast<size_t>(k));
    std::sort(kept.begin(), kept.end());
    const std::vector<int32_t> group_of = nearest_group(c, kept);
    std::vector<std::vector<int32_t>> members(kept.size());
    for (size_t g = 0; g < kept.size(); ++g) members[g].push_back(kept[g]);
    for (size_t e = 0; e < group_of.size(); ++e)
      if (std::find(kept.begin(), kept.end(), static_cast<int32_t>(e)) == kept.end())
        members[static_cast<size_t>(group_of[e])].push_back(static_cast<int32_t>(e));
    return regroup(moe, group_of, members, c.usage);
  });
}

}  // namespace moekit::compress
