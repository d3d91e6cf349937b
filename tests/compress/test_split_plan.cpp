// Expert split planners: exact membership rules of MoEBERT's importance split, partitions for
// random and cluster, and clear errors for impossible sizes.
#include <catch2/catch.hpp>
#include <numeric>
#include <set>

#include "compress/split_plan.h"
#include "model/rng.h"

using namespace moekit;
using namespace moekit::compress;

TEST_CASE("Importance split: shared top neurons in every expert, the rest dealt round-robin", "[compress][split]") {
  const int ffn = 48, n = 4, size = 10, shared = 4;
  std::vector<double> scores(ffn);
  Rng rng(1);
  for (auto& s : scores) s = rng.uniform();
  std::vector<int32_t> rank(ffn);
  std::iota(rank.begin(), rank.end(), 0);
  std::sort(rank.begin(), rank.end(), [&](int a, int b) { return scores[a] > scores[b]; });

  const SplitPlan plan = plan_importance(scores, n, size, shared);
  REQUIRE(plan.experts.size() == static_cast<size_t>(n));
  const std::set<int32_t> top_shared(rank.begin(), rank.begin() + shared);
  std::set<int32_t> unique_union;
  for (int e = 0; e < n; ++e) {
    const auto& idx = plan.experts[e];
    REQUIRE(idx.size() == static_cast<size_t>(size));
    CHECK(std::set<int32_t>(idx.begin(), idx.begin() + shared) == top_shared);
    for (int k = 0; k < size - shared; ++k) {
      CHECK(idx[shared + k] == rank[shared + e + n * k]);  // rank S+e+N*k goes to expert e
      CHECK(unique_union.insert(idx[shared + k]).second);  // unique parts are disjoint
    }
  }
  // Exactly the most important shared + N*(D-S) neurons are kept; the rest are dropped.
  std::set<int32_t> kept(top_shared);
  kept.insert(unique_union.begin(), unique_union.end());
  CHECK(kept == std::set<int32_t>(rank.begin(), rank.begin() + shared + n * (size - shared)));
}

TEST_CASE("Random and cluster splits partition the neurons into equal experts", "[compress][split]") {
  const int ffn = 64, n = 4;
  Rng rng(2);
  Mat w1(ffn, 8);
  for (Eigen::Index i = 0; i < w1.size(); ++i) w1.data()[i] = static_cast<float>(rng.normal());
  for (const SplitPlan& plan : {plan_random(ffn, n, ffn / n, 7), plan_cluster(w1, n, ffn / n, 7)}) {
    INFO(plan.method);
    std::set<int32_t> all;
    for (const auto& idx : plan.experts) {
      CHECK(idx.size() == static_cast<size_t>(ffn / n));
      for (int32_t j : idx) CHECK(all.insert(j).second);
    }
    CHECK(all.size() == static_cast<size_t>(ffn));
  }
  CHECK(plan_random(ffn, n, 16, 7).experts == plan_random(ffn, n, 16, 7).experts);  // seeded
  CHECK(plan_random(ffn, n, 16, 7).experts != plan_random(ffn, n, 16, 8).experts);
}

TEST_CASE("Cluster split groups neurons with similar input weights", "[compress][split]") {
  // Two well-separated directions: neurons 0..15 near e0, 16..31 near e1.
  Rng rng(3);
  Mat w1 = Mat::Zero(32, 4);
  for (int i = 0; i < 32; ++i) {
    w1(i, i < 16 ? 0 : 1) = 1.0f;
    for (int k = 0; k < 4; ++k) w1(i, k) += 0.05f * static_cast<float>(rng.normal());
  }
  const SplitPlan plan = plan_cluster(w1, 2, 16, 5);
  for (const auto& idx : plan.experts) {
    const bool first = idx[0] < 16;
    for (int32_t j : idx) CHECK((j < 16) == first);
  }
}

TEST_CASE("Impossible split sizes are refused with the reason", "[compress][split]") {
  std::vector<double> scores(32, 1.0);
  REQUIRE_THROWS_WITH(plan_importance(scores, 4, 40, 4), Catch::Contains("--expert-size must be in [1, 32]"));
  REQUIRE_THROWS_WITH(plan_importance(scores, 4, 8, 8), Catch::Contains("must be smaller than --expert-size"));
  REQUIRE_THROWS_WITH(plan_importance(scores, 0, 8, 2), Catch::Contains("--experts must be at least 1"));
  REQUIRE_THROWS_WITH(plan_importance(scores, 4, 12, 2), Catch::Contains("exceeds 32"));
  REQUIRE_THROWS_WITH(plan_random(32, 4, 9, 1), Catch::Contains("exceeds 32"));
  CHECK_NOTHROW(plan_random(32, 4, 8, 1));
}

