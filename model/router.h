// MoE routers (DESIGN.md 4.3): which experts each token goes to, and with what weight.
// A closed set, so MoeFFN holds a std::variant<HashRouter, GateRouter> (STYLE.md 2.3).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/param.h"

namespace moekit {

// One forward's routing decisions. Slot s = t * top_k + j is the j-th choice of token row t.
struct Routing {
  int64_t top_k = 1;
  std::vector<int32_t> choice;               // [n_tok * top_k] expert of each slot, best first
  std::vector<float> weight;                 // [n_tok * top_k] combine weight of each slot
  std::vector<std::vector<int32_t>> tokens;  // per expert: its token rows, ascending
  std::vector<std::vector<int32_t>> slots;   // per expert: the slot of each of its tokens
  std::vector<int64_t> load;                 // per expert: real (unpadded) tokens routed to it
  // Switch load balance over real tokens: N * sum_i f_i * P_i (gate only, else 0).
  double balance_loss = 0;
  std::vector<double> top1_fraction;  // f_i: share of real tokens whose first choice is i
  int64_t real_tokens = 0;
};

// Builds the per-expert lists and loads from choice/weight. mask: 1 = real token (may be empty:
// all real).
Routing make_routing(std::vector<int32_t> choice, std::vector<float> weight, int64_t top_k, int64_t n_experts,
                     const std::vector<uint8_t>& mask);

// Training capacity (GShard, Switch): each expert keeps at most ceil(factor * real_tokens * top_k /
// n_experts) real slots, in token order; the real slots past it are removed from tokens/slots
// (and load) and returned, ascending. Padding slots are kept and do not count.
std::vector<int32_t> apply_capacity(Routing& routing, double factor, const std::vector<uint8_t>& mask);

// A fixed table vocabulary id -> expert (MoEBERT's default); no parameters, weight 1.
struct HashRouter {
  std::vector<int32_t> table;  // [vocab_size], values in [0, n_experts)

  Routing route(const std::vector<int32_t>& ids, int64_t n_experts, const std::vector<uint8_t>& mask) const;
};

// Seeded uniform-random balanced table: expert e gets floor or ceil(vocab/n) ids, shuffled.
std::vector<int32_t> make_hash_table(int64_t vocab_size, int64_t n_experts, uint64_t seed);
// Greedy by frequency (MoEBERT's hash_balance.py): ids by count, largest first, each to the
// currently least-loaded expert (lowest index on ties). Unseen ids (count 0) are dealt
// round-robin in id order (MoEBERT draws them at random).
std::vector<int32_t> make_balanced_hash_table(const std::vector<int64_t>& token_counts, int64_t n_experts);

// Learned linear router: p = softmax(x Wg^T), the top_k experts by p. top-1 combines with the raw
// p (so the router gets a gradient); top-k > 1 renormalises p over the chosen k.
struct GateRouter {
  Param weight;  // [n_experts, hidden], "...moe.router.weight", no bias
  int64_t top_k = 1;
  // moe.router "gate-sentence": one expert per sequence from the mean of its real tokens' x
  // (MoEBERT's sentence-level gate); top_k 1, weight = that sequence's raw probability.
  bool sentence = false;

  struct Cache {
    Mat x;      // [n_tok, hidden] (sentence: [batch, hidden] pooled)
    Mat probs;  // [n_tok, n_experts] (sentence: [batch, n_experts])
    std::vector<float> inv_count;  // sentence: 1 / real tokens per sequence
  };

  void init(const std::string& name, int64_t hidden, int64_t n_experts, int64_t k);
  int64_t n_experts() const { return weight.value.rows(); }
  Mat probabilities(MatRef x) const;
  // Also computes the balance loss over real tokens (mask 1).
  Routing route(MatRef x, const std::vector<uint8_t>& mask, Cache* cache) const;
  // Sentence gate: x is [batch * seq, hidden]; the balance loss is over sequences.
  Routing route_sentence(MatRef x, int64_t batch, int64_t seq, const std::vector<uint8_t>& mask, Cache* cache) const;
  // dweight: dL/d(routing.weight) per slot. Adds balance_weight * d(balance_loss). Writes dx,
  // accumulates weight.grad.
  void backward(const std::vector<float>& dweight, const Routing& routing, const Cache& cache,
                const std::vector<uint8_t>& mask, float balance_weight, Mat& dx);
  // The sentence gate's backward (route_sentence): dx [batch * seq, hidden].
  void backward_sentence(const std::vector<float>& dweight, const Routing& routing, const Cache& cache, int64_t batch,
                         int64_t seq, const std::vector<uint8_t>& mask, float balance_weight, Mat& dx);
};

}  // namespace moekit
