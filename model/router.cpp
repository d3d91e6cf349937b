#include "model/router.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "model/error.h"
#include "model/matmul.h"
#include "model/rng.h"

namespace moekit {

namespace {
bool is_real(const std::vector<uint8_t>& mask, size_t t) { return mask.empty() || mask[t] != 0; }

// softmax over each row, in place
void softmax_rows(Mat& p) {
  for (Eigen::Index t = 0; t < p.rows(); ++t) {
    p.row(t).array() -= p.row(t).maxCoeff();
    p.row(t) = p.row(t).array().exp().matrix();
    p.row(t) /= p.row(t).sum();
  }
}

}  // namespace

Routing make_routing(std::vector<int32_t> choice, std::vector<float> weight, int64_t top_k, int64_t n_experts,
                     const std::vector<uint8_t>& mask) {
  Routing r;
  r.top_k = top_k;
  r.choice = std::move(choice);
  r.weight = std::move(weight);
  r.tokens.assign(static_cast<size_t>(n_experts), {});
  r.slots.assign(static_cast<size_t>(n_experts), {});
  r.load.assign(static_cast<size_t>(n_experts), 0);
  const size_t n_tok = r.choice.size() / static_cast<size_t>(top_k);
  for (size_t t = 0; t < n_tok; ++t) {
    const bool real = is_real(mask, t);
    r.real_tokens += real;
    for (size_t j = 0; j < static_cast<size_t>(top_k); ++j) {
      const size_t s = t * static_cast<size_t>(top_k) + j;
      const auto e = static_cast<size_t>(r.choice[s]);
      r.tokens[e].push_back(static_cast<int32_t>(t));
      r.slots[e].push_back(static_cast<int32_t>(s));
      r.load[e] += real;
    }
  }
  return r;
}

std::vector<int32_t> apply_capacity(Routing& r, double factor, const std::vector<uint8_t>& mask) {
  const auto n = static_cast<double>(r.tokens.size());
  const auto capacity = static_cast<int64_t>(std::ceil(factor * static_cast<double>(r.real_tokens * r.top_k) / n));
  std::vector<int32_t> dropped;
  for (size_t e = 0; e < r.tokens.size(); ++e) {
    std::vector<int32_t> tokens, slots;
    int64_t taken = 0;
    for (size_t i = 0; i < r.tokens[e].size(); ++i) {
      const bool real = is_real(mask, static_cast<size_t>(r.tokens[e][i]));
      if (real && taken >= capacity) {
        dropped.push_back(r.slots[e][i]);
        --r.load[e];
        continue;
      }
      taken += real;
      tokens.push_back(r.tokens[e][i]);
      slots.push_back(r.slots[e][i]);
    }
    r.tokens[e] = std::move(tokens);
    r.slots[e] = std::move(slots);
  }
  std::sort(dropped.begin(), dropped.end());
  return dropped;
}

Routing HashRouter::route(const std::vector<int32_t>& ids, int64_t n_experts, const std::vector<uint8_t>& mask) const {
  std::vector<int32_t> choice(ids.size());
  for (size_t t = 0; t < ids.size(); ++t) {
    if (ids[t] < 0 || static_cast<size_t>(ids[t]) >= table.size())
      fail("", "hash router: token id " + std::to_string(ids[t]) + " is outside the table (" +
                   std::to_string(table.size()) + " ids)");
    choice[t] = table[static_cast<size_t>(ids[t])];
  }
  return make_routing(std::move(choice), std::vector<float>(ids.size(), 1.0f), 1, n_experts, mask);
}

std::vector<int32_t> make_hash_table(int64_t vocab_size, int64_t n_experts, uint64_t seed) {
  std::vector<int32_t> table(static_cast<size_t>(vocab_size));
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>(static_cast<int64_t>(i) % n_experts);
  Rng rng(seed);
  for (size_t i = table.size(); i > 1; --i) std::swap(table[i - 1], table[rng.below(i)]);
  return table;
}

std::vector<int32_t> make_balanced_hash_table(const std::vector<int64_t>& counts, int64_t n_experts) {
  std::vector<int32_t> order(counts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return counts[a] > counts[b]; });
  std::vector<int32_t> table(counts.size(), 0);
  std::vector<int64_t> load(static_cast<size_t>(n_experts), 0);
  int64_t unseen = 0;
  for (int32_t id : order) {
    const auto i = static_cast<size_t>(id);
    if (counts[i] <= 0) {
      table[i] = static_cast<int32_t>(unseen++ % n_experts);
      continue;
    }
    const auto e = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[e] += counts[i];
    table[i] = static_cast<int32_t>(e);
  }
  return table;
}

void GateRouter::init(const std::string& name, int64_t hidden, int64_t n_experts, int64_t k) {
  weight.init(name, n_experts, hidden, true);
  top_k = k;
}

Mat GateRouter::probabilities(MatRef x) const {
  Mat p;
  matmul_nt(x, weight.value, p);  // fp32 at every precision: routing decisions stay put
  softmax_rows(p);
  return p;
}

// Sentence gate: pooled_b = mean of x over b's real tokens, p_b = softmax(pooled_b Wg^T), every
// token of b goes to argmax p_b with weight max p_b. Balance over sequences (N sum_i f_i P_i).
Routing GateRouter::route_sentence(MatRef x, int64_t batch, int64_t seq, const std::vector<uint8_t>& mask,
                                   Cache* cache) const {
  check(batch * seq == x.rows(), "", "sentence gate: " + std::to_string(x.rows()) + " rows for a batch of " +
                                         std::to_string(batch) + " x " + std::to_string(seq));
  Mat pooled = Mat::Zero(batch, x.cols());
  std::vector<float> inv(static_cast<size_t>(batch), 0.0f);
  for (int64_t b = 0; b < batch; ++b) {
    int64_t count = 0;
    for (int64_t t = 0; t < seq; ++t)
      if (is_real(mask, static_cast<size_t>(b * seq + t))) {
        pooled.row(b) += x.row(b * seq + t);
        ++count;
      }
    inv[static_cast<size_t>(b)] = count > 0 ? 1.0f / static_cast<float>(count) : 0.0f;
    pooled.row(b) *= inv[static_cast<size_t>(b)];
  }
  const Mat p = probabilities(pooled);
  const Eigen::Index n = p.cols();
  std::vector<int32_t> choice(static_cast<size_t>(batch * seq));
  std::vector<float> w(choice.size());
  std::vector<double> f(static_cast<size_t>(n), 0.0), mean_p(static_cast<size_t>(n), 0.0);
  int64_t real_seqs = 0;
  for (int64_t b = 0; b < batch; ++b) {
    Eigen::Index best = 0;
    for (Eigen::Index i = 1; i < n; ++i)
      if (p(b, i) > p(b, best)) best = i;  // ties to the lower index
    for (int64_t t = 0; t < seq; ++t) {
      choice[static_cast<size_t>(b * seq + t)] = static_cast<int32_t>(best);
      w[static_cast<size_t>(b * seq + t)] = p(b, best);
    }
    if (inv[static_cast<size_t>(b)] == 0) continue;
    ++real_seqs;
    f[static_cast<size_t>(best)] += 1.0;
    for (Eigen::Index i = 0; i < n; ++i) mean_p[static_cast<size_t>(i)] += p(b, i);
  }
  Routing r = make_routing(std::move(choice), std::move(w), 1, n, mask);
  r.top1_fraction.assign(static_cast<size_t>(n), 0.0);
  if (real_seqs > 0) {
    for (size_t i = 0; i < f.size(); ++i) {
      r.top1_fraction[i] = f[i] / static_cast<double>(real_seqs);
      r.balance_loss += r.top1_fraction[i] * mean_p[i] / static_cast<double>(real_seqs);
    }
    r.balance_loss *= static_cast<double>(n);
  }
  if (cache) {
    cache->x = std::move(pooled);
    cache->probs = p;
    cache->inv_count = std::move(inv);
  }
  return r;
}

// dg_b = sum over b's rows of dweight;  dp_b,c = dg_b;  balance: dp_bi += w N f_i / R_seq (real b);
// softmax as backward; dpooled = dlogit Wg;  dx_t = dpooled_b / count_b for b's real tokens.
void GateRouter::backward_sentence(const std::vector<float>& dweight, const Routing& r, const Cache& cache,
                                   int64_t batch, int64_t seq, const std::vector<uint8_t>& mask, float balance_weight,
                                   Mat& dx) {
  const Mat& p = cache.probs;
  const Eigen::Index n = p.cols();
  int64_t real_seqs = 0;
  for (float v : cache.inv_count) real_seqs += v > 0;
  Mat dp = Mat::Zero(batch, n);
  for (int64_t b = 0; b < batch; ++b) {
    float dg = 0;
    for (int64_t t = 0; t < seq; ++t) dg += dweight[static_cast<size_t>(b * seq + t)];
    dp(b, r.choice[static_cast<size_t>(b * seq)]) = dg;
    if (balance_weight != 0 && real_seqs > 0 && cache.inv_count[static_cast<size_t>(b)] > 0) {
      const double scale = balance_weight * static_cast<double>(n) / static_cast<double>(real_seqs);
      for (Eigen::Index i = 0; i < n; ++i) dp(b, i) += static_cast<float>(scale * r.top1_fraction[static_cast<size_t>(i)]);
    }
  }
  Mat dlogit(batch, n);
  for (Eigen::Index b = 0; b < batch; ++b) {
    const float inner = dp.row(b).dot(p.row(b));
    dlogit.row(b) = p.row(b).cwiseProduct((dp.row(b).array() - inner).matrix());
  }
  matmul_tn_acc(dlogit, cache.x, weight.grad_buffer());
  Mat dpooled;
  matmul_nn(dlogit, weight.value, dpooled);
  dx = Mat::Zero(batch * seq, weight.value.cols());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t)
      if (is_real(mask, static_cast<size_t>(b * seq + t)))
        dx.row(b * seq + t) = dpooled.row(b) * cache.inv_count[static_cast<size_t>(b)];
}

Routing GateRouter::route(MatRef x, const std::vector<uint8_t>& mask, Cache* cache) const {
  const Mat p = probabilities(x);
  const Eigen::Index n_tok = p.rows(), n = p.cols();
  const auto k = static_cast<size_t>(top_k);
  std::vector<int32_t> choice(static_cast<size_t>(n_tok) * k);
  std::vector<float> weight_out(choice.size());
  std::vector<int32_t> rank(static_cast<size_t>(n));
  for (Eigen::Index t = 0; t < n_tok; ++t) {
    std::iota(rank.begin(), rank.end(), 0);
    // Highest probability first; ties to the lower expert index, so routing is deterministic.
    std::partial_sort(rank.begin(), rank.begin() + static_cast<long>(k), rank.end(),
                      [&](int32_t a, int32_t b) { return p(t, a) > p(t, b) || (p(t, a) == p(t, b) && a < b); });
    float sum = 0;
    for (size_t j = 0; j < k; ++j) sum += p(t, rank[j]);
    for (size_t j = 0; j < k; ++j) {
      const size_t s = static_cast<size_t>(t) * k + j;
      choice[s] = rank[j];
      weight_out[s] = k == 1 ? p(t, rank[j]) : p(t, rank[j]) / sum;
    }
  }
  Routing r = make_routing(std::move(choice), std::move(weight_out), top_k, n, mask);
  r.top1_fraction.assign(static_cast<size_t>(n), 0.0);
  if (r.real_tokens > 0) {
    std::vector<double> mean_p(static_cast<size_t>(n), 0.0);
    for (Eigen::Index t = 0; t < n_tok; ++t) {
      if (!is_real(mask, static_cast<size_t>(t))) continue;
      r.top1_fraction[static_cast<size_t>(r.choice[static_cast<size_t>(t) * k])] += 1.0;
      for (Eigen::Index i = 0; i < n; ++i) mean_p[static_cast<size_t>(i)] += p(t, i);
    }
    for (size_t i = 0; i < mean_p.size(); ++i) {
      r.top1_fraction[i] /= static_cast<double>(r.real_tokens);
      r.balance_loss += r.top1_fraction[i] * mean_p[i] / static_cast<double>(r.real_tokens);
    }
    r.balance_loss *= static_cast<double>(n);
  }
  if (cache) {
    cache->x = x;
    cache->probs = p;
  }
  return r;
}

// top-1: g = p_c                 => dp_c = dg
// top-k: g_j = p_cj / S, S = sum_j p_cj  => dp_cj = (dg_j - sum_i dg_i g_i) / S
// balance B = N sum_i f_i P_i, P_i = mean over real t of p_ti  => dp_ti += w N f_i / R (real t)
// softmax: dlogit_t = p_t * (dp_t - <dp_t, p_t>);  dWg += dlogit^T x;  dx = dlogit Wg.
void GateRouter::backward(const std::vector<float>& dweight, const Routing& r, const Cache& cache,
                          const std::vector<uint8_t>& mask, float balance_weight, Mat& dx) {
  const Mat& p = cache.probs;
  const Eigen::Index n_tok = p.rows(), n = p.cols();
  const auto k = static_cast<size_t>(top_k);
  Mat dp = Mat::Zero(n_tok, n);
  const bool balance = balance_weight != 0 && r.real_tokens > 0;
  for (Eigen::Index t = 0; t < n_tok; ++t) {
    const size_t s0 = static_cast<size_t>(t) * k;
    if (k == 1) {
      dp(t, r.choice[s0]) = dweight[s0];
    } else {
      float sum = 0, dot = 0;
      for (size_t j = 0; j < k; ++j) {
        sum += p(t, r.choice[s0 + j]);
        dot += dweight[s0 + j] * r.weight[s0 + j];
      }
      for (size_t j = 0; j < k; ++j) dp(t, r.choice[s0 + j]) = (dweight[s0 + j] - dot) / sum;
    }
    if (balance && is_real(mask, static_cast<size_t>(t))) {
      const double scale = balance_weight * static_cast<double>(n) / static_cast<double>(r.real_tokens);
      for (Eigen::Index i = 0; i < n; ++i)
        dp(t, i) += static_cast<float>(scale * r.top1_fraction[static_cast<size_t>(i)]);
    }
  }
  Mat dlogit(n_tok, n);
  for (Eigen::Index t = 0; t < n_tok; ++t) {
    const float inner = dp.row(t).dot(p.row(t));
    dlogit.row(t) = p.row(t).cwiseProduct((dp.row(t).array() - inner).matrix());
  }
  matmul_tn_acc(dlogit, cache.x, weight.grad_buffer());
  matmul_nn(dlogit, weight.value, dx);
}

}  // namespace moekit
