#include "model/moe_ffn.h"

#include <omp.h>

#include <algorithm>

#include "model/dropout.h"
#include "model/error.h"

namespace moekit {

namespace {

const std::string kDenseW1 = "intermediate.dense.weight";

Mat gather_rows(MatRef m, const std::vector<int32_t>& rows) {
  Mat out(static_cast<Eigen::Index>(rows.size()), m.cols());
  for (size_t i = 0; i < rows.size(); ++i) out.row(static_cast<Eigen::Index>(i)) = m.row(rows[i]);
  return out;
}

int64_t busy_experts(const Routing& r) {
  return std::count_if(r.tokens.begin(), r.tokens.end(), [](const auto& t) { return !t.empty(); });
}

}  // namespace

void MoeFFN::init(const std::string& layer_prefix, const BertConfig& c, int64_t layer) {
  const MoeConfig& mc = c.moe.value();
  const int64_t n = mc.experts_at(layer);
  prefix = layer_prefix + "moe.";
  expert_norm = mc.norm == "expert";
  experts.assign(static_cast<size_t>(n), ExpertFFN{});
  for (size_t e = 0; e < experts.size(); ++e)
    experts[e].init(prefix + "experts." + std::to_string(e) + ".", c.hidden_size, mc.expert_size, c.hidden_act,
                    c.layer_norm_eps, expert_norm);
  if (mc.gated()) {
    GateRouter gate;
    gate.init(prefix + "router.weight", c.hidden_size, n, mc.top_k);
    router = std::move(gate);
  } else {
    router = HashRouter{make_hash_table(c.vocab_size, n, static_cast<uint64_t>(layer))};
  }
  hidden_dropout = c.hidden_dropout_prob;
}

MoeFFN MoeFFN::from_dense(const DenseFFN& dense, const std::vector<std::vector<int32_t>>& neurons, Router r,
                          bool with_expert_norm) {
  const std::string& w1_name = dense.intermediate.weight.name;
  if (w1_name.size() < kDenseW1.size() || w1_name.compare(w1_name.size() - kDenseW1.size(), kDenseW1.size(), kDenseW1))
    fail("", "MoeFFN::from_dense: \"" + w1_name + "\" is not a dense FFN weight");
  const Mat& w1 = dense.intermediate.weight.value;
  const Mat& w2 = dense.output.weight.value;
  const Eigen::Index ffn = w1.rows(), hidden = w1.cols();
  if (neurons.empty() || neurons[0].empty()) fail("", "MoeFFN::from_dense: expected at least one non-empty expert");
  MoeFFN m;
  m.prefix = w1_name.substr(0, w1_name.size() - kDenseW1.size()) + "moe.";
  m.hidden_dropout = dense.hidden_dropout;
  m.expert_norm = with_expert_norm;
  const auto size = static_cast<Eigen::Index>(neurons[0].size());
  for (size_t e = 0; e < neurons.size(); ++e) {
    const std::vector<int32_t>& idx = neurons[e];
    const std::string where = "MoeFFN::from_dense: expert " + std::to_string(e);
    if (static_cast<Eigen::Index>(idx.size()) != size)
      fail("", where + " has " + std::to_string(idx.size()) + " neurons, expert 0 has " + std::to_string(size));
    std::vector<bool> seen(static_cast<size_t>(ffn), false);
    for (int32_t j : idx) {
      if (j < 0 || j >= ffn) fail("", where + ": neuron " + std::to_string(j) + " is outside 0.." + std::to_string(ffn - 1));
      if (seen[static_cast<size_t>(j)]) fail("", where + ": neuron " + std::to_string(j) + " appears twice");
      seen[static_cast<size_t>(j)] = true;
    }
    ExpertFFN x;
    x.init(m.prefix + "experts." + std::to_string(e) + ".", hidden, size, dense.act, dense.norm.eps, with_expert_norm);
    for (Eigen::Index i = 0; i < size; ++i) {
      x.intermediate.weight.value.row(i) = w1.row(idx[static_cast<size_t>(i)]);
      x.intermediate.bias.value(0, i) = dense.intermediate.bias.value(0, idx[static_cast<size_t>(i)]);
      x.output.weight.value.col(i) = w2.col(idx[static_cast<size_t>(i)]);
    }
    x.output.bias.value = dense.output.bias.value;
    if (with_expert_norm) {
      x.norm.weight.value = dense.norm.weight.value;
      x.norm.bias.value = dense.norm.bias.value;
    }
    x.neuron_index = idx;
    m.experts.push_back(std::move(x));
  }
  if (auto* gate = std::get_if<GateRouter>(&r)) {
    if (gate->weight.value.rows() != m.n_experts() || gate->weight.value.cols() != hidden)
      fail("", "MoeFFN::from_dense: router weight is " + shape_str(gate->weight.value.rows(), gate->weight.value.cols()) +
                   ", expected " + shape_str(m.n_experts(), hidden));
    gate->weight.name = m.prefix + "router.weight";
    gate->weight.grad = Mat();  // allocated on first use
  }
  m.router = std::move(r);
  return m;
}

void MoeFFN::rename(const std::string& moe_prefix) {
  prefix = moe_prefix;
  for (size_t e = 0; e < experts.size(); ++e) experts[e].rename(prefix + "experts." + std::to_string(e) + ".");
  if (auto* gate = std::get_if<GateRouter>(&router)) gate->weight.name = prefix + "router.weight";
}

int64_t MoeFFN::top_k() const {
  const auto* gate = std::get_if<GateRouter>(&router);
  return gate ? gate->top_k : 1;
}

void MoeFFN::check(const BertConfig& c, int64_t layer) const {
  const MoeConfig& mc = c.moe.value();
  const int64_t n = mc.experts_at(layer);
  const std::string where = prefix.substr(0, prefix.size() ? prefix.size() - 1 : 0) + ": ";
  if (n_experts() != n) fail("", where + std::to_string(n_experts()) + " experts, config says " + std::to_string(n));
  for (const ExpertFFN& x : experts) {
    expect_shape(x.intermediate.weight.value, mc.expert_size, c.hidden_size, x.intermediate.weight.name);
    expect_shape(x.output.weight.value, c.hidden_size, mc.expert_size, x.output.weight.name);
    if (static_cast<int64_t>(x.neuron_index.size()) != mc.expert_size)
      fail("", where + "neuron_index has " + std::to_string(x.neuron_index.size()) + " entries, expected " +
                   std::to_string(mc.expert_size));
  }
  if (expert_norm != (mc.norm == "expert"))
    fail("", where + "LayerNorm placement differs from config moe.norm \"" + mc.norm + "\"");
  if (gated() != mc.gated()) fail("", where + "router kind differs from config moe.router \"" + mc.router + "\"");
  if (top_k() != mc.top_k) fail("", where + "top_k differs from config moe.top_k");
  if (const auto* hash = std::get_if<HashRouter>(&router)) {
    if (static_cast<int64_t>(hash->table.size()) != c.vocab_size)
      fail("", where + "hash table has " + std::to_string(hash->table.size()) + " entries, vocab_size is " +
                   std::to_string(c.vocab_size));
    for (int32_t e : hash->table)
      if (e < 0 || e >= n) fail("", where + "hash table sends a token to expert " + std::to_string(e));
  }
}

Routing MoeFFN::route(MatRef x, const Batch& batch, GateRouter::Cache* cache) const {
  if (const auto* gate = std::get_if<GateRouter>(&router)) return gate->route(x, batch.mask, cache);
  return std::get<HashRouter>(router).route(batch.ids, n_experts(), batch.mask);
}

namespace {

// A run of one expert's token rows: [begin, end) of Routing::tokens[expert].
struct RowChunk {
  int64_t expert;
  size_t begin, end;
};

// Inference splits every expert's rows into chunks so that the threads share the work evenly
// whatever the routing's imbalance (one task per expert left a thread idle while the other ran
// the busiest expert). Chunks stay large enough for an efficient product: at least 32 rows, about
// four per thread, at most 256.
std::vector<RowChunk> make_chunks(const Routing& r, int threads) {
  size_t total = 0;
  for (const auto& t : r.tokens) total += t.size();
  const size_t per = (total + static_cast<size_t>(4 * threads) - 1) / static_cast<size_t>(4 * threads);
  const size_t chunk = std::clamp<size_t>((per + 15) / 16 * 16, 32, 256);
  std::vector<RowChunk> chunks;
  for (size_t e = 0; e < r.tokens.size(); ++e)
    for (size_t b = 0; b < r.tokens[e].size(); b += chunk)
      chunks.push_back({static_cast<int64_t>(e), b, std::min(r.tokens[e].size(), b + chunk)});
  return chunks;
}

}  // namespace

void MoeFFN::forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng, MoeStats* stats) const {
  Routing r = route(x, batch, cache ? &cache->gate : nullptr);
  const int64_t n = n_experts(), k = r.top_k;
  // One mask per choice rank, drawn serially: with one expert this is the dense FFN's mask.
  std::vector<Mat> masks;
  if (expert_norm && dropout_rng && hidden_dropout > 0)
    for (int64_t j = 0; j < k; ++j) masks.push_back(dropout_mask(*dropout_rng, x.rows(), x.cols(), hidden_dropout));
  std::vector<Mat> outs(static_cast<size_t>(n));
  if (cache) {
    // Training: one task per expert (its cache holds all its rows for the backward).
    cache->experts.assign(static_cast<size_t>(n), ExpertFFN::Cache{});
#pragma omp parallel for schedule(dynamic, 1) if (busy_experts(r) > 1)
    for (int64_t e = 0; e < n; ++e) {
      const auto& rows = r.tokens[static_cast<size_t>(e)];
      if (rows.empty()) continue;
      Mat mask;
      if (!masks.empty()) {
        mask.resize(static_cast<Eigen::Index>(rows.size()), x.cols());
        for (size_t i = 0; i < rows.size(); ++i)
          mask.row(static_cast<Eigen::Index>(i)) = masks[static_cast<size_t>(r.slots[static_cast<size_t>(e)][i] % k)].row(rows[i]);
      }
      experts[static_cast<size_t>(e)].forward(gather_rows(x, rows), outs[static_cast<size_t>(e)],
                                              &cache->experts[static_cast<size_t>(e)], masks.empty() ? nullptr : &mask);
    }
  } else {
    // Inference (dropout off without a cache only in eval; a masked forward keeps the mask rows).
    for (int64_t e = 0; e < n; ++e) outs[static_cast<size_t>(e)].resize(static_cast<Eigen::Index>(r.tokens[static_cast<size_t>(e)].size()), x.cols());
    const std::vector<RowChunk> chunks = make_chunks(r, omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1) if (chunks.size() > 1)
    for (size_t c = 0; c < chunks.size(); ++c) {
      const RowChunk& ch = chunks[c];
      const auto& all = r.tokens[static_cast<size_t>(ch.expert)];
      const std::vector<int32_t> rows(all.begin() + static_cast<std::ptrdiff_t>(ch.begin), all.begin() + static_cast<std::ptrdiff_t>(ch.end));
      Mat mask;
      if (!masks.empty()) {
        mask.resize(static_cast<Eigen::Index>(rows.size()), x.cols());
        for (size_t i = 0; i < rows.size(); ++i)
          mask.row(static_cast<Eigen::Index>(i)) = masks[static_cast<size_t>(r.slots[static_cast<size_t>(ch.expert)][ch.begin + i] % k)].row(rows[i]);
      }
      Mat out;
      experts[static_cast<size_t>(ch.expert)].forward(gather_rows(x, rows), out, nullptr, masks.empty() ? nullptr : &mask);
      outs[static_cast<size_t>(ch.expert)].middleRows(static_cast<Eigen::Index>(ch.begin), out.rows()) = out;
    }
  }
  y = Mat::Zero(x.rows(), x.cols());
  for (size_t e = 0; e < outs.size(); ++e) {  // fixed expert order
    const auto& rows = r.tokens[e];
    for (size_t i = 0; i < rows.size(); ++i)
      y.row(rows[i]) += r.weight[static_cast<size_t>(r.slots[e][i])] * outs[e].row(static_cast<Eigen::Index>(i));
  }
  if (stats) {
    stats->load = r.load;
    stats->balance_loss = r.balance_loss;
  }
  if (cache) {
    cache->routing = std::move(r);
    if (gated()) cache->out = std::move(outs);
  }
}

// y_t = sum_e g_te E_e(x_t):  dE_e(x_t) = g_te dy_t;  dg_te = <dy_t, E_e(x_t)>;
// dx_t = sum_e (E_e backward)_t + router backward (gate only, from dg and the balance term).
void MoeFFN::backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, float balance_weight) {
  const Routing& r = cache.routing;
  const int64_t n = n_experts();
  const bool gate = gated();
  std::vector<float> dweight(r.weight.size(), 0.0f);
  std::vector<Mat> dxs(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 1) if (busy_experts(r) > 1)
  for (int64_t e = 0; e < n; ++e) {
    const auto& rows = r.tokens[static_cast<size_t>(e)];
    const auto& slots = r.slots[static_cast<size_t>(e)];
    if (rows.empty()) continue;
    Mat dye(static_cast<Eigen::Index>(rows.size()), dy.cols());
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto row = static_cast<Eigen::Index>(i);
      dye.row(row) = r.weight[static_cast<size_t>(slots[i])] * dy.row(rows[i]);
      if (gate) dweight[static_cast<size_t>(slots[i])] = dy.row(rows[i]).dot(cache.out[static_cast<size_t>(e)].row(row));
    }
    experts[static_cast<size_t>(e)].backward(dye, cache.experts[static_cast<size_t>(e)], dxs[static_cast<size_t>(e)]);
  }
  dx = Mat::Zero(dy.rows(), dy.cols());
  for (size_t e = 0; e < dxs.size(); ++e)  // fixed expert order
    for (size_t i = 0; i < r.tokens[e].size(); ++i) dx.row(r.tokens[e][i]) += dxs[e].row(static_cast<Eigen::Index>(i));
  if (gate) {
    Mat dxr;
    std::get<GateRouter>(router).backward(dweight, r, cache.gate, batch.mask, balance_weight, dxr);
    dx += dxr;
  }
}

void MoeFFN::collect(ParamList& params) {
  if (auto* gate = std::get_if<GateRouter>(&router)) params.push_back(&gate->weight);
  for (ExpertFFN& x : experts) x.collect(params);
}

void MoeFFN::collect_indices(std::vector<IndexParam>& list, int64_t ffn_size) {
  if (auto* hash = std::get_if<HashRouter>(&router))
    list.push_back({prefix + "hash_table", &hash->table, 0, static_cast<int32_t>(n_experts())});
  for (size_t e = 0; e < experts.size(); ++e)
    list.push_back({prefix + "experts." + std::to_string(e) + ".neuron_index", &experts[e].neuron_index, -1,
                    static_cast<int32_t>(ffn_size)});
}

}  // namespace moekit
