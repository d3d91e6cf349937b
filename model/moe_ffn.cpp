#include "model/moe_ffn.h"

#include <omp.h>

#include <algorithm>
#include <optional>

#include "model/dropout.h"
#include "model/error.h"

namespace moekit {

namespace {

// The layer prefix of a dense FFN's W1 ("...layer.N." from "...layer.N.intermediate.dense.weight"
// or DistilBERT's "...layer.N.ffn.lin1.weight"); none when it is not named like one.
std::optional<std::string> dense_layer_prefix(const std::string& w1_name) {
  for (const LayerNames* n : {&kBertLayerNames, &kDistilBertLayerNames}) {
    const std::string tail = std::string(n->ffn_in) + ".weight";
    if (w1_name.size() >= tail.size() && w1_name.compare(w1_name.size() - tail.size(), tail.size(), tail) == 0)
      return w1_name.substr(0, w1_name.size() - tail.size());
  }
  return std::nullopt;
}

Mat gather_rows(MatRef m, const std::vector<int32_t>& rows) {
  Mat out(static_cast<Eigen::Index>(rows.size()), m.cols());
  for (size_t i = 0; i < rows.size(); ++i) out.row(static_cast<Eigen::Index>(i)) = m.row(rows[i]);
  return out;
}

int64_t busy_experts(const Routing& r) {
  return std::count_if(r.tokens.begin(), r.tokens.end(), [](const auto& t) { return !t.empty(); });
}

// Switch's router jitter: U(1 - eps, 1 + eps) per element of the router's input.
Mat jitter_noise(Rng& rng, Eigen::Index rows, Eigen::Index cols, double eps) {
  Mat m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(1.0 + eps * (2.0 * rng.uniform() - 1.0));
  return m;
}

// Expert e built from the dense neurons idx (W1 rows, b1 entries, W2 columns); with_b2: its own
// copy of b2 (a tied shared FFN has none of its own: its output bias starts at 0).
ExpertFFN slice_expert(const DenseFFN& dense, const std::vector<int32_t>& idx, const std::string& prefix,
                       bool with_norm, bool with_b2) {
  const Mat& w1 = dense.intermediate.weight.value;
  const Mat& w2 = dense.output.weight.value;
  const auto size = static_cast<Eigen::Index>(idx.size());
  ExpertFFN x;
  x.init(prefix, w1.cols(), size, dense.act, dense.norm.eps, with_norm);
  for (Eigen::Index i = 0; i < size; ++i) {
    x.intermediate.weight.value.row(i) = w1.row(idx[static_cast<size_t>(i)]);
    x.intermediate.bias.value(0, i) = dense.intermediate.bias.value(0, idx[static_cast<size_t>(i)]);
    x.output.weight.value.col(i) = w2.col(idx[static_cast<size_t>(i)]);
  }
  if (with_b2) x.output.bias.value = dense.output.bias.value;
  if (with_norm) {
    x.norm.weight.value = dense.norm.weight.value;
    x.norm.bias.value = dense.norm.bias.value;
  }
  x.neuron_index = idx;
  return x;
}

}  // namespace

void MoeFFN::init(const std::string& layer_prefix, const BertConfig& c, int64_t layer) {
  const MoeConfig& mc = c.moe.value();
  const int64_t n = mc.experts_at(layer);
  prefix = layer_prefix + "moe.";
  expert_norm = mc.norm == "expert";
  experts.assign(static_cast<size_t>(n), ExpertFFN{});
  for (size_t e = 0; e < experts.size(); ++e)
    experts[e].init(prefix + "experts." + std::to_string(e) + ".", c.hidden_size, mc.routed_size(), c.hidden_act,
                    c.layer_norm_eps, expert_norm);
  shared_expert.reset();
  if (mc.tied_size() > 0) {
    shared_expert.emplace();
    shared_expert->init(prefix + "shared_expert.", c.hidden_size, mc.tied_size(), c.hidden_act, c.layer_norm_eps, false);
  }
  if (mc.gated()) {
    GateRouter gate;
    gate.init(prefix + "router.weight", c.hidden_size, n, mc.top_k);
    gate.sentence = mc.sentence_gate();
    router = std::move(gate);
  } else {
    router = HashRouter{make_hash_table(c.vocab_size, n, static_cast<uint64_t>(layer))};
  }
  hidden_dropout = c.hidden_dropout_prob;
}

MoeFFN MoeFFN::from_dense(const DenseFFN& dense, const std::vector<std::vector<int32_t>>& neurons_in, Router r,
                          bool with_expert_norm, int64_t tied_shared) {
  const std::string& w1_name = dense.intermediate.weight.name;
  const std::optional<std::string> layer_prefix = dense_layer_prefix(w1_name);
  if (!layer_prefix) fail("", "MoeFFN::from_dense: \"" + w1_name + "\" is not a dense FFN weight");
  const Mat& w1 = dense.intermediate.weight.value;
  const Eigen::Index ffn = w1.rows(), hidden = w1.cols();
  if (neurons_in.empty() || neurons_in[0].empty()) fail("", "MoeFFN::from_dense: expected at least one non-empty expert");
  MoeFFN m;
  m.prefix = *layer_prefix + "moe.";
  m.hidden_dropout = dense.hidden_dropout;
  m.expert_norm = with_expert_norm;
  std::vector<std::vector<int32_t>> neurons = neurons_in;
  if (tied_shared > 0) {  // the common head of every list becomes the shared FFN
    const auto head = static_cast<std::ptrdiff_t>(tied_shared);
    if (static_cast<int64_t>(neurons[0].size()) <= tied_shared)
      fail("", "MoeFFN::from_dense: a tied shared FFN of " + std::to_string(tied_shared) +
                   " neurons leaves no routed neurons in experts of " + std::to_string(neurons[0].size()));
    const std::vector<int32_t> shared(neurons[0].begin(), neurons[0].begin() + head);
    for (auto& idx : neurons) {
      if (idx.size() < shared.size() || !std::equal(shared.begin(), shared.end(), idx.begin()))
        fail("", "MoeFFN::from_dense: tied experts must all start with the same shared neurons");
      idx.erase(idx.begin(), idx.begin() + head);
    }
    m.shared_expert = slice_expert(dense, shared, m.prefix + "shared_expert.", false, false);
  }
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
    m.experts.push_back(slice_expert(dense, idx, m.prefix + "experts." + std::to_string(e) + ".", with_expert_norm, true));
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
  if (shared_expert) shared_expert->rename(prefix + "shared_expert.");
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
    expect_shape(x.intermediate.weight.value, mc.routed_size(), c.hidden_size, x.intermediate.weight.name);
    expect_shape(x.output.weight.value, c.hidden_size, mc.routed_size(), x.output.weight.name);
    if (static_cast<int64_t>(x.neuron_index.size()) != mc.routed_size())
      fail("", where + "neuron_index has " + std::to_string(x.neuron_index.size()) + " entries, expected " +
                   std::to_string(mc.routed_size()));
  }
  if (shared_expert.has_value() != (mc.tied_size() > 0))
    fail("", where + (shared_expert ? "has a shared FFN, config moe.shared_mode is \"" + mc.shared_mode + "\""
                                    : "has no shared FFN, config moe.shared_mode is tied"));
  if (shared_expert) {
    expect_shape(shared_expert->intermediate.weight.value, mc.tied_size(), c.hidden_size,
                 shared_expert->intermediate.weight.name);
    expect_shape(shared_expert->output.weight.value, c.hidden_size, mc.tied_size(), shared_expert->output.weight.name);
  }
  if (expert_norm != (mc.norm == "expert"))
    fail("", where + "LayerNorm placement differs from config moe.norm \"" + mc.norm + "\"");
  if (gated() != mc.gated()) fail("", where + "router kind differs from config moe.router \"" + mc.router + "\"");
  if (top_k() != mc.top_k) fail("", where + "top_k differs from config moe.top_k");
  if (const auto* gate = std::get_if<GateRouter>(&router); gate && gate->sentence != mc.sentence_gate())
    fail("", where + "sentence gate differs from config moe.router \"" + mc.router + "\"");
  if (const auto* hash = std::get_if<HashRouter>(&router)) {
    if (static_cast<int64_t>(hash->table.size()) != c.vocab_size)
      fail("", where + "hash table has " + std::to_string(hash->table.size()) + " entries, vocab_size is " +
                   std::to_string(c.vocab_size));
    for (int32_t e : hash->table)
      if (e < 0 || e >= n) fail("", where + "hash table sends a token to expert " + std::to_string(e));
  }
}

Routing MoeFFN::route(MatRef x, const Batch& batch, GateRouter::Cache* cache, const Mat* jitter) const {
  if (const auto* gate = std::get_if<GateRouter>(&router)) {
    const Mat noisy = jitter ? Mat(x.cwiseProduct(*jitter)) : Mat();
    const MatRef in = jitter ? MatRef(noisy) : x;
    if (gate->sentence) return gate->route_sentence(in, batch.batch, batch.seq, batch.mask, cache);
    return gate->route(in, batch.mask, cache);
  }
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

// y_t = sum of weight * expert output over token t's slots, added in ascending expert order (the
// same sums whatever the thread count), in parallel over tokens: each row is written by one thread.
void combine(const Routing& r, const std::vector<Mat>& outs, Mat& y, Eigen::Index n_tok, Eigen::Index cols) {
  const int64_t k = r.top_k;
  std::vector<int32_t> slot_expert(static_cast<size_t>(n_tok * k), -1), slot_row(static_cast<size_t>(n_tok * k), -1);
  for (size_t e = 0; e < r.slots.size(); ++e)
    for (size_t i = 0; i < r.slots[e].size(); ++i) {
      slot_expert[static_cast<size_t>(r.slots[e][i])] = static_cast<int32_t>(e);
      slot_row[static_cast<size_t>(r.slots[e][i])] = static_cast<int32_t>(i);
    }
  y.resize(n_tok, cols);
#pragma omp parallel for schedule(static)
  for (Eigen::Index t = 0; t < n_tok; ++t) {
    auto yt = y.row(t);
    yt.setZero();
    int32_t done = -1;  // experts of t are distinct: take them in ascending order
    for (int64_t pass = 0; pass < k; ++pass) {
      int64_t best = -1;
      for (int64_t j = 0; j < k; ++j) {
        const int32_t e = slot_expert[static_cast<size_t>(t * k + j)];
        if (e > done && (best < 0 || e < slot_expert[static_cast<size_t>(t * k + best)])) best = j;
      }
      if (best < 0) break;
      const size_t s = static_cast<size_t>(t * k + best);
      yt += r.weight[s] * outs[static_cast<size_t>(slot_expert[s])].row(slot_row[s]);
      done = slot_expert[s];
    }
  }
}

}  // namespace

void MoeFFN::forward(MatRef x, const Batch& batch, Mat& y, Cache* cache, Rng* dropout_rng, MoeStats* stats) const {
  const bool training = dropout_rng != nullptr;  // capacity and jitter: training only
  Mat jitter;
  if (training && gated() && train_routing.jitter > 0) jitter = jitter_noise(*dropout_rng, x.rows(), x.cols(), train_routing.jitter);
  Routing r = route(x, batch, cache ? &cache->gate : nullptr, jitter.size() > 0 ? &jitter : nullptr);
  std::vector<int32_t> dropped;
  if (training && train_routing.capacity_factor > 0) dropped = apply_capacity(r, train_routing.capacity_factor, batch.mask);
  // Plain inference of a tied top-1 layer runs the fused experts: S(x) is inside each of them.
  const std::vector<ExpertFFN>* fused = !cache && !dropout_rng && tied_fused ? tied_fused.get() : nullptr;
  // Plain top-1 inference of small experts: a fused kernel per expert chunk reads the chunk's rows
  // from x and writes them, scaled, into y (model/expert_kernel.h, expert_kernel_int8.h; the int8
  // one runs the shared FFN inside).
  const bool plain_top1 = !cache && !dropout_rng && r.top_k == 1;
  const auto* kernels = plain_top1 && expert_kernels ? expert_kernels.get() : nullptr;
  const auto* kernels8 = plain_top1 && expert_kernels_int8 ? expert_kernels_int8.get() : nullptr;
  Mat shared_out;  // tied: S(x) for every token, once
  if (shared_expert && !fused && !kernels8) shared_expert->forward(x, shared_out, cache ? &cache->shared : nullptr, nullptr);
  const int64_t n = n_experts(), k = r.top_k;
  // One mask per choice rank, drawn serially: with one expert this is the dense FFN's mask.
  std::vector<Mat> masks;
  if (expert_norm && dropout_rng && hidden_dropout > 0)
    for (int64_t j = 0; j < k; ++j) masks.push_back(dropout_mask(*dropout_rng, x.rows(), x.cols(), hidden_dropout));
  std::vector<Mat> outs(static_cast<size_t>(n));
  // Expert e on the token rows `rows`. Rows that are every row (a sentence gate at batch 1) are
  // read from x as it is: no gather. Tied with expert LayerNorms: the shared FFN's output rows
  // are added inside the expert, before its LayerNorm.
  auto expert_forward = [&](int64_t e, const std::vector<int32_t>& rows, Mat& out, ExpertFFN::Cache* ec,
                            const Mat* mask) {
    const bool all_rows = static_cast<Eigen::Index>(rows.size()) == x.rows();
    const Mat xe = all_rows ? Mat() : gather_rows(x, rows);
    if (fused) return (*fused)[static_cast<size_t>(e)].forward(all_rows ? x : MatRef(xe), out, nullptr, nullptr);
    const Mat add = expert_norm && shared_expert ? (all_rows ? shared_out : gather_rows(shared_out, rows)) : Mat();
    experts[static_cast<size_t>(e)].forward(all_rows ? x : MatRef(xe), out, ec, mask, add.size() > 0 ? &add : nullptr);
  };
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
      expert_forward(e, rows, outs[static_cast<size_t>(e)], &cache->experts[static_cast<size_t>(e)],
                     masks.empty() ? nullptr : &mask);
    }
  } else {
    // Inference (dropout off without a cache only in eval; a masked forward keeps the mask rows).
    // Top-1: every token row comes from one expert chunk, so the chunk writes it into y scaled by
    // its gate weight (the combine's sum of one term): no per-expert outputs, no combine pass.
    const bool direct = k == 1;
    if (direct) {
      y.resize(x.rows(), x.cols());
      std::vector<uint8_t> routed(static_cast<size_t>(x.rows()), 0);
      for (const auto& rows : r.tokens)
        for (int32_t t : rows) routed[static_cast<size_t>(t)] = 1;
      for (Eigen::Index t = 0; t < x.rows(); ++t)
        if (!routed[static_cast<size_t>(t)]) y.row(t).setZero();  // no expert takes it (padding)
    } else {
      for (int64_t e = 0; e < n; ++e)
        outs[static_cast<size_t>(e)].resize(static_cast<Eigen::Index>(r.tokens[static_cast<size_t>(e)].size()), x.cols());
    }
    // On one thread of a parallel region (its share of the batch: BertModel::forward_by_thread)
    // the chunks run in turn: as large as make_chunks allows, for fewer and larger products.
    const std::vector<RowChunk> chunks = make_chunks(r, omp_in_parallel() ? 1 : omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1) if (chunks.size() > 1)
    for (size_t c = 0; c < chunks.size(); ++c) {
      const RowChunk& ch = chunks[c];
      const auto& all = r.tokens[static_cast<size_t>(ch.expert)];
      if (kernels || kernels8) {
        const auto& slots = r.slots[static_cast<size_t>(ch.expert)];
        std::vector<float> scale(ch.end - ch.begin);
        for (size_t i = 0; i < scale.size(); ++i) scale[i] = r.weight[static_cast<size_t>(slots[ch.begin + i])];
        const auto e = static_cast<size_t>(ch.expert);
        const auto count = static_cast<int64_t>(scale.size());
        if (kernels)
          expert_kernel_forward((*kernels)[e], x.data(), x.outerStride(), all.data() + ch.begin, scale.data(), count,
                                y.data(), y.outerStride());
        else
          expert_kernel_int8_forward((*kernels8)[e], x.data(), x.outerStride(), all.data() + ch.begin, scale.data(),
                                     count, y.data(), y.outerStride());
        continue;
      }
      const std::vector<int32_t> rows(all.begin() + static_cast<std::ptrdiff_t>(ch.begin), all.begin() + static_cast<std::ptrdiff_t>(ch.end));
      Mat mask;
      if (!masks.empty()) {
        mask.resize(static_cast<Eigen::Index>(rows.size()), x.cols());
        for (size_t i = 0; i < rows.size(); ++i)
          mask.row(static_cast<Eigen::Index>(i)) = masks[static_cast<size_t>(r.slots[static_cast<size_t>(ch.expert)][ch.begin + i] % k)].row(rows[i]);
      }
      Mat out;
      expert_forward(ch.expert, rows, out, nullptr, masks.empty() ? nullptr : &mask);
      if (direct) {
        const auto& slots = r.slots[static_cast<size_t>(ch.expert)];
        for (size_t i = 0; i < rows.size(); ++i)
          y.row(rows[i]) = r.weight[static_cast<size_t>(slots[ch.begin + i])] * out.row(static_cast<Eigen::Index>(i));
      } else {
        outs[static_cast<size_t>(ch.expert)].middleRows(static_cast<Eigen::Index>(ch.begin), out.rows()) = out;
      }
    }
    if (!direct) combine(r, outs, y, x.rows(), x.cols());
  }
  if (cache) combine(r, outs, y, x.rows(), x.cols());
  // A slot over capacity skips its expert: the identity (the residual) inside expert norms, 0 else.
  if (expert_norm)
    for (int32_t s : dropped) y.row(s / k) += r.weight[static_cast<size_t>(s)] * x.row(s / k);
  if (shared_expert && !expert_norm) y += shared_out;
  if (stats) {
    stats->load = r.load;
    stats->balance_loss = r.balance_loss;
    stats->routed_slots = r.real_tokens * k;
    stats->dropped_slots = 0;
    for (int32_t s : dropped) stats->dropped_slots += batch.mask.empty() || batch.mask[static_cast<size_t>(s / k)];
  }
  if (cache) {
    cache->routing = std::move(r);
    if (gated()) cache->out = std::move(outs);
    cache->jitter = std::move(jitter);
    cache->dropped_x.resize(static_cast<Eigen::Index>(dropped.size()), x.cols());
    for (size_t i = 0; i < dropped.size(); ++i) cache->dropped_x.row(static_cast<Eigen::Index>(i)) = x.row(dropped[i] / k);
    cache->dropped = std::move(dropped);
  }
}

// y_t = sum_e g_te E_e(x_t):  dE_e(x_t) = g_te dy_t;  dg_te = <dy_t, E_e(x_t)>;
// dx_t = sum_e (E_e backward)_t + router backward (gate only, from dg and the balance term).
void MoeFFN::backward(MatRef dy, const Batch& batch, const Cache& cache, Mat& dx, float balance_weight) {
  drop_inference_packs();  // the weights are about to be trained
  const Routing& r = cache.routing;
  const int64_t n = n_experts();
  const bool gate = gated();
  std::vector<float> dweight(r.weight.size(), 0.0f);
  std::vector<Mat> dxs(static_cast<size_t>(n));
  const bool tied_inside = shared_expert && expert_norm;
  std::vector<Mat> dadds(tied_inside ? static_cast<size_t>(n) : 0);
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
    experts[static_cast<size_t>(e)].backward(dye, cache.experts[static_cast<size_t>(e)], dxs[static_cast<size_t>(e)],
                                             tied_inside ? &dadds[static_cast<size_t>(e)] : nullptr);
  }
  dx = Mat::Zero(dy.rows(), dy.cols());
  for (size_t e = 0; e < dxs.size(); ++e)  // fixed expert order
    for (size_t i = 0; i < r.tokens[e].size(); ++i) dx.row(r.tokens[e][i]) += dxs[e].row(static_cast<Eigen::Index>(i));
  backward_extras(dy, cache, dadds, dweight, dx);
  if (gate) {
    Mat dxr;
    const GateRouter& g = std::get<GateRouter>(router);
    if (g.sentence)
      std::get<GateRouter>(router).backward_sentence(dweight, r, cache.gate, batch.batch, batch.seq, batch.mask,
                                                     balance_weight, dxr);
    else
      std::get<GateRouter>(router).backward(dweight, r, cache.gate, batch.mask, balance_weight, dxr);
    if (cache.jitter.size() > 0) dxr.array() *= cache.jitter.array();
    dx += dxr;
  }
}

// The shared FFN (its gradient: the chosen experts' addend gradients, or dy under norm "layer")
// and the slots over capacity (identity inside expert norms: dx += g dy, dg = <dy, x>).
void MoeFFN::backward_extras(MatRef dy, const Cache& cache, const std::vector<Mat>& dadds, std::vector<float>& dweight,
                             Mat& dx) {
  const Routing& r = cache.routing;
  if (shared_expert) {
    Mat dshared = dadds.empty() ? Mat(dy) : Mat(Mat::Zero(dy.rows(), dy.cols()));
    for (size_t e = 0; e < dadds.size(); ++e)
      for (size_t i = 0; i < r.tokens[e].size(); ++i) dshared.row(r.tokens[e][i]) += dadds[e].row(static_cast<Eigen::Index>(i));
    Mat dxs;
    shared_expert->backward(dshared, cache.shared, dxs);
    dx += dxs;
  }
  if (!expert_norm) return;
  for (size_t i = 0; i < cache.dropped.size(); ++i) {
    const int32_t s = cache.dropped[i];
    const int64_t t = s / r.top_k;
    dx.row(t) += r.weight[static_cast<size_t>(s)] * dy.row(t);
    dweight[static_cast<size_t>(s)] = dy.row(t).dot(cache.dropped_x.row(static_cast<Eigen::Index>(i)));
  }
}

void MoeFFN::pack_tied_for_inference() {
  tied_fused.reset();
  if (!shared_expert || !expert_norm || top_k() != 1) return;
  const ExpertFFN& s = *shared_expert;
  auto is_float = [](const ExpertFFN& f) { return !f.intermediate.int8_weight && !f.output.int8_weight; };
  if (!is_float(s) || !std::all_of(experts.begin(), experts.end(), is_float)) return;
  auto fused = std::make_shared<std::vector<ExpertFFN>>();
  for (size_t i = 0; i < experts.size(); ++i) {
    ExpertFFN& e = experts[i];
    ExpertFFN f;
    f.init(prefix + "tied_fused." + std::to_string(i) + ".", e.intermediate.in(), s.size() + e.size(), e.act,
           e.norm.eps);
    f.norm = e.norm;
    f.intermediate.precision = f.output.precision = e.intermediate.precision;
    f.intermediate.weight.value << s.intermediate.weight.value, e.intermediate.weight.value;
    f.intermediate.bias.value << s.intermediate.bias.value, e.intermediate.bias.value;
    f.output.weight.value << s.output.weight.value, e.output.weight.value;
    f.output.bias.value = s.output.bias.value + e.output.bias.value;
    f.intermediate.pack_for_inference();
    f.output.pack_for_inference();
    e.intermediate.packed.reset();  // the fused pack serves these rows now
    e.output.packed.reset();
    fused->push_back(std::move(f));
  }
  shared_expert->intermediate.packed.reset();
  shared_expert->output.packed.reset();
  tied_fused = std::move(fused);
}

void MoeFFN::pack_for_inference() {
  expert_kernels.reset();
  expert_kernels_int8.reset();
  pack_tied_for_inference();
  if (!expert_norm || top_k() != 1) return;
  auto is_int8 = [](const ExpertFFN& f) { return f.intermediate.int8_weight && f.output.int8_weight; };
  if (std::all_of(experts.begin(), experts.end(), is_int8) && (!shared_expert || is_int8(*shared_expert))) {
    const int64_t s = shared_expert ? shared_expert->size() : 0;
    for (const ExpertFFN& e : experts)
      if (!expert_kernel_int8_applies(e.intermediate.in(), s, e.size())) return;
    auto kernels = std::make_shared<std::vector<ExpertKernelInt8Weights>>();
    const ExpertFFN* sh = shared_expert ? &*shared_expert : nullptr;
    for (const ExpertFFN& e : experts)
      kernels->push_back(pack_expert_kernel_int8(
          *e.intermediate.int8_weight, e.intermediate.bias.value, *e.output.int8_weight, e.output.bias.value,
          sh ? &*sh->intermediate.int8_weight : nullptr, sh ? MatRef(sh->intermediate.bias.value) : MatRef(Mat()),
          sh ? &*sh->output.int8_weight : nullptr, sh ? MatRef(sh->output.bias.value) : MatRef(Mat()),
          e.norm.weight.value, e.norm.bias.value, e.norm.eps, e.act));
    expert_kernels_int8 = std::move(kernels);
    return;
  }
  if (shared_expert && !tied_fused) return;
  const std::vector<ExpertFFN>& source = tied_fused ? *tied_fused : experts;
  for (const ExpertFFN& e : source)
    if (e.intermediate.int8_weight || e.output.int8_weight || e.intermediate.precision != Precision::fp32 ||
        e.output.precision != Precision::fp32 || !expert_kernel_applies(e.intermediate.in(), e.size()))
      return;
  auto kernels = std::make_shared<std::vector<ExpertKernelWeights>>();
  for (const ExpertFFN& e : source)
    kernels->push_back(pack_expert_kernel(e.intermediate.weight.value, e.intermediate.bias.value, e.output.weight.value,
                                          e.output.bias.value, e.norm.weight.value, e.norm.bias.value, e.norm.eps, e.act));
  expert_kernels = std::move(kernels);
}

void MoeFFN::collect(ParamList& params) {
  if (auto* gate = std::get_if<GateRouter>(&router)) params.push_back(&gate->weight);
  if (shared_expert) shared_expert->collect(params);
  for (ExpertFFN& x : experts) x.collect(params);
}

void MoeFFN::collect_indices(std::vector<IndexParam>& list, int64_t ffn_size) {
  if (auto* hash = std::get_if<HashRouter>(&router))
    list.push_back({prefix + "hash_table", &hash->table, 0, static_cast<int32_t>(n_experts())});
  if (shared_expert)
    list.push_back({prefix + "shared_expert.neuron_index", &shared_expert->neuron_index, -1, static_cast<int32_t>(ffn_size)});
  for (size_t e = 0; e < experts.size(); ++e)
    list.push_back({prefix + "experts." + std::to_string(e) + ".neuron_index", &experts[e].neuron_index, -1,
                    static_cast<int32_t>(ffn_size)});
}

}  // namespace moekit
