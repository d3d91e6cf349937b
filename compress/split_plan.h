// Which dense FFN neurons each expert gets (DESIGN.md 4.2): pure index work, testable without
// weights. Planners: importance (MoEBERT), cluster (MoEfication's balanced k-means), random.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/tensor.h"

namespace moekit::compress {

struct SplitPlan {
  std::vector<std::vector<int32_t>> experts;  // per expert: dense neuron indices (shared first)
  int shared = 0;                             // leading entries every expert holds
  std::string method;
};

// MoEBERT: neurons sorted by score, descending; the top `shared` go to every expert; the rest are
// dealt round-robin in rank order (rank shared + e + N*k to expert e) until each expert holds
// expert_size. Needs shared < expert_size and shared + N*(expert_size - shared) <= ffn.
SplitPlan plan_importance(const std::vector<double>& scores, int n_experts, int expert_size, int shared);

// A seeded random balanced partition: each expert gets expert_size distinct neurons, no overlap.
SplitPlan plan_random(int ffn, int n_experts, int expert_size, uint64_t seed);

// Balanced k-means on the L2-normalised rows of W1 [ffn, hidden] (MoEfication): N clusters of
// ffn/N neurons; when expert_size is smaller, each expert keeps the neurons nearest its centroid.
SplitPlan plan_cluster(const Mat& w1, int n_experts, int expert_size, uint64_t seed, int iterations = 25);

// Sparse upcycling: every expert holds the same neurons, all of the FFN in order when
// expert_size = ffn, else the expert_size most important ones (scores needed), best first.
SplitPlan plan_upcycle(const std::vector<double>* scores, int ffn, int n_experts, int expert_size);

// Throws Error describing the first impossible combination of sizes.
void check_split_sizes(int ffn, int n_experts, int expert_size, int shared, const std::string& method);

}  // namespace moekit::compress
