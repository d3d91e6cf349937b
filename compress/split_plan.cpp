#include "compress/split_plan.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "model/error.h"
#include "model/rng.h"

namespace moekit::compress {

void check_split_sizes(int ffn, int n, int size, int shared, const std::string& method) {
  auto bad = [&](const std::string& why) { fail("", "cannot split an FFN of " + std::to_string(ffn) + " neurons: " + why); };
  if (n < 1) bad("--experts must be at least 1");
  if (size < 1 || size > ffn) bad("--expert-size must be in [1, " + std::to_string(ffn) + "], got " + std::to_string(size));
  if (shared < 0) bad("--shared must not be negative");
  if (method == "upcycle") {
    if (shared != 0) bad("--shared applies to --method importance only (got " + std::to_string(shared) + ")");
  } else if (method == "importance") {
    if (shared >= size && !(n == 1 && shared == size))
      bad("--shared " + std::to_string(shared) + " must be smaller than --expert-size " + std::to_string(size));
    if (static_cast<int64_t>(shared) + static_cast<int64_t>(n) * (size - shared) > ffn)
      bad("shared + experts x (expert_size - shared) = " +
          std::to_string(static_cast<int64_t>(shared) + static_cast<int64_t>(n) * (size - shared)) + " exceeds " +
          std::to_string(ffn));
  } else {
    if (shared != 0) bad("--shared applies to --method importance only (got " + std::to_string(shared) + ")");
    if (static_cast<int64_t>(n) * size > ffn)
      bad("experts x expert_size = " + std::to_string(static_cast<int64_t>(n) * size) + " exceeds " +
          std::to_string(ffn) + " (method " + method + " gives each neuron to one expert)");
  }
}

SplitPlan plan_importance(const std::vector<double>& scores, int n, int size, int shared) {
  const int ffn = static_cast<int>(scores.size());
  check_split_sizes(ffn, n, size, shared, "importance");
  std::vector<int32_t> rank(static_cast<size_t>(ffn));
  std::iota(rank.begin(), rank.end(), 0);
  // Stable: equal scores keep neuron order, so plans are reproducible.
  std::stable_sort(rank.begin(), rank.end(), [&](int32_t a, int32_t b) { return scores[a] > scores[b]; });
  SplitPlan plan;
  plan.method = "importance";
  plan.shared = shared;
  plan.experts.assign(static_cast<size_t>(n), std::vector<int32_t>(rank.begin(), rank.begin() + shared));
  for (int k = 0; k < size - shared; ++k)
    for (int e = 0; e < n; ++e) plan.experts[static_cast<size_t>(e)].push_back(rank[static_cast<size_t>(shared + e + n * k)]);
  return plan;
}

SplitPlan plan_upcycle(const std::vector<double>* scores, int ffn, int n, int size) {
  check_split_sizes(ffn, n, size, 0, "upcycle");
  std::vector<int32_t> rank(static_cast<size_t>(ffn));
  std::iota(rank.begin(), rank.end(), 0);
  if (size < ffn) {
    if (!scores) fail("", "--method upcycle with --expert-size " + std::to_string(size) + " < " + std::to_string(ffn) +
                              " needs --importance (the experts are the most important neurons)");
    std::stable_sort(rank.begin(), rank.end(), [&](int32_t a, int32_t b) { return (*scores)[a] > (*scores)[b]; });
  }
  SplitPlan plan;
  plan.method = "upcycle";
  plan.experts.assign(static_cast<size_t>(n), std::vector<int32_t>(rank.begin(), rank.begin() + size));
  return plan;
}

SplitPlan plan_random(int ffn, int n, int size, uint64_t seed) {
  check_split_sizes(ffn, n, size, 0, "random");
  std::vector<int32_t> perm(static_cast<size_t>(ffn));
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(seed);
  for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[rng.below(i)]);
  SplitPlan plan;
  plan.method = "random";
  for (int e = 0; e < n; ++e) {
    std::vector<int32_t> idx(perm.begin() + static_cast<std::ptrdiff_t>(e) * size,
                             perm.begin() + static_cast<std::ptrdiff_t>(e + 1) * size);
    std::sort(idx.begin(), idx.end());
    plan.experts.push_back(std::move(idx));
  }
  return plan;
}

namespace {

// Greedy balanced assignment: all (point, cluster) pairs by distance, each point to its nearest
// cluster that still has room. Returns the cluster of each point.
std::vector<int> balanced_assign(const Mat& dist, int capacity) {
  const Eigen::Index points = dist.rows(), clusters = dist.cols();
  std::vector<std::pair<float, int64_t>> pairs;
  pairs.reserve(static_cast<size_t>(points * clusters));
  for (Eigen::Index p = 0; p < points; ++p)
    for (Eigen::Index c = 0; c < clusters; ++c) pairs.emplace_back(dist(p, c), p * clusters + c);
  std::sort(pairs.begin(), pairs.end());
  std::vector<int> owner(static_cast<size_t>(points), -1), load(static_cast<size_t>(clusters), 0);
  for (const auto& [d, key] : pairs) {
    const auto p = static_cast<size_t>(key / clusters);
    const auto c = static_cast<size_t>(key % clusters);
    if (owner[p] >= 0 || load[c] >= capacity) continue;
    owner[p] = static_cast<int>(c);
    ++load[c];
  }
  return owner;
}

}  // namespace

SplitPlan plan_cluster(const Mat& w1, int n, int size, uint64_t seed, int iterations) {
  const int ffn = static_cast<int>(w1.rows());
  check_split_sizes(ffn, n, size, 0, "cluster");
  Mat x = w1;
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const float norm = x.row(r).norm();
    if (norm > 0) x.row(r) /= norm;
  }
  // Each cluster holds exactly expert_size neurons; when N * expert_size < ffn the neurons
  // farthest from every centroid are left out (dropped, as MoEBERT drops unassigned ones).
  const int capacity = size;
  Rng rng(seed);
  Mat centroids(n, x.cols());
  std::vector<int32_t> perm(static_cast<size_t>(ffn));
  std::iota(perm.begin(), perm.end(), 0);
  for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[rng.below(i)]);
  for (int c = 0; c < n; ++c) centroids.row(c) = x.row(perm[static_cast<size_t>(c)]);
  std::vector<int> owner;
  Mat dist(ffn, n);
  for (int it = 0; it < iterations; ++it) {
    // Squared distance = |x|^2 + |c|^2 - 2 x.c
    dist = (-2.0f * (x * centroids.transpose())).rowwise() + centroids.rowwise().squaredNorm().transpose();
    dist.colwise() += x.rowwise().squaredNorm();
    std::vector<int> next = balanced_assign(dist, capacity);
    if (next == owner) break;
    owner = std::move(next);
    centroids.setZero();
    std::vector<int> count(static_cast<size_t>(n), 0);
    for (int p = 0; p < ffn; ++p) {
      if (owner[static_cast<size_t>(p)] < 0) continue;
      centroids.row(owner[static_cast<size_t>(p)]) += x.row(p);
      ++count[static_cast<size_t>(owner[static_cast<size_t>(p)])];
    }
    for (int c = 0; c < n; ++c)
      if (count[static_cast<size_t>(c)] > 0) centroids.row(c) /= static_cast<float>(count[static_cast<size_t>(c)]);
  }
  SplitPlan plan;
  plan.method = "cluster";
  plan.experts.resize(static_cast<size_t>(n));
  for (int p = 0; p < ffn; ++p)
    if (owner[static_cast<size_t>(p)] >= 0) plan.experts[static_cast<size_t>(owner[static_cast<size_t>(p)])].push_back(p);
  return plan;
}

}  // namespace moekit::compress
