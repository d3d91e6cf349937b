// Routers: hash-table builders, gate top-k weights, load counts and the Switch balance loss
// (padding excluded), against numbers worked out by hand.
#include <catch2/catch.hpp>
#include <cmath>

#include "model/router.h"

using namespace moekit;

TEST_CASE("make_hash_table is seeded, in range and balanced", "[model][router]") {
  const auto a = make_hash_table(103, 4, 7), b = make_hash_table(103, 4, 7), c = make_hash_table(103, 4, 8);
  CHECK(a == b);
  CHECK(a != c);
  std::vector<int> count(4, 0);
  for (int32_t e : a) {
    REQUIRE(e >= 0);
    REQUIRE(e < 4);
    ++count[static_cast<size_t>(e)];
  }
  for (int n : count) CHECK((n == 25 || n == 26));  // 103 = 3 * 26 + 25
  // Shuffled, not dealt in id order.
  int in_order = 0;
  for (size_t i = 0; i < a.size(); ++i) in_order += a[i] == static_cast<int32_t>(i % 4);
  CHECK(in_order < 60);
}

TEST_CASE("make_balanced_hash_table sends the most frequent ids to the least-loaded expert", "[model][router]") {
  // 100 -> e0 (100, 0); 60 -> e1 (100, 60); 50 -> e1 (100, 110); 40 -> e0 (140, 110);
  // 10 -> e1 (140, 120); unseen ids 5, 6, 7 dealt round-robin 0, 1, 0.
  const std::vector<int64_t> counts{100, 60, 50, 40, 10, 0, 0, 0};
  CHECK(make_balanced_hash_table(counts, 2) == std::vector<int32_t>{0, 1, 1, 0, 1, 0, 1, 0});
  // Ties keep id order: equal counts alternate over three experts.
  CHECK(make_balanced_hash_table({5, 5, 5, 5}, 3) == std::vector<int32_t>{0, 1, 2, 0});
}

TEST_CASE("Hash routing groups each expert's tokens and counts real tokens only", "[model][router]") {
  HashRouter h{{2, 0, 1, 2, 0}};
  const std::vector<int32_t> ids{3, 1, 4, 0, 0};
  const std::vector<uint8_t> mask{1, 1, 1, 0, 0};  // the last two are padding (id 0 -> expert 2)
  Routing r = h.route(ids, 3, mask);
  CHECK(r.choice == std::vector<int32_t>{2, 0, 0, 2, 2});
  CHECK(r.tokens[0] == std::vector<int32_t>{1, 2});
  CHECK(r.tokens[1].empty());
  CHECK(r.tokens[2] == std::vector<int32_t>{0, 3, 4});
  CHECK(r.load == std::vector<int64_t>{2, 0, 1});
  CHECK(r.real_tokens == 3);
  CHECK(r.balance_loss == 0);
  for (float w : r.weight) CHECK(w == 1.0f);
  CHECK_THROWS_WITH(h.route({5}, 3, {}), Catch::Contains("token id 5 is outside the table"));
}

TEST_CASE("Gate routing: raw top-1 probability, renormalised top-2, balance loss over real tokens", "[model][router]") {
  GateRouter g;
  g.init("r.weight", 2, 3, 1);
  g.weight.value << 1, 0, 0, 1, 0, 0;  // logits = (x0, x1, 0)
  Mat x(4, 2);
  x << 2, 0, 1, 0, 0, 1, 0, 5;  // the last row is padding and would move f and P a lot
  const std::vector<uint8_t> mask{1, 1, 1, 0};
  auto softmax = [](double a, double b, double c) {
    const double s = std::exp(a) + std::exp(b) + std::exp(c);
    return std::vector<double>{std::exp(a) / s, std::exp(b) / s, std::exp(c) / s};
  };
  const auto p0 = softmax(2, 0, 0), p1 = softmax(1, 0, 0), p2 = softmax(0, 1, 0);

  Routing r1 = g.route(x, mask, nullptr);
  CHECK(r1.choice == std::vector<int32_t>{0, 0, 1, 1});
  CHECK(r1.weight[0] == Approx(p0[0]).epsilon(1e-6));
  CHECK(r1.weight[2] == Approx(p2[1]).epsilon(1e-6));
  CHECK(r1.load == std::vector<int64_t>{2, 1, 0});
  // f = (2/3, 1/3, 0); P_i = mean of p_i over the three real rows; B = 3 * sum f_i P_i.
  const double P0 = (p0[0] + p1[0] + p2[0]) / 3, P1 = (p0[1] + p1[1] + p2[1]) / 3;
  CHECK(r1.balance_loss == Approx(3 * (2.0 / 3 * P0 + 1.0 / 3 * P1)).epsilon(1e-6));

  g.top_k = 2;
  Routing r2 = g.route(x, mask, nullptr);
  // Row 0: expert 0 first, then experts 1 and 2 tie (p = equal): the lower index wins.
  CHECK(r2.choice[0] == 0);
  CHECK(r2.choice[1] == 1);
  CHECK(r2.weight[0] == Approx(p0[0] / (p0[0] + p0[1])).epsilon(1e-6));
  CHECK(r2.weight[0] + r2.weight[1] == Approx(1.0).epsilon(1e-6));
  CHECK(r2.load == std::vector<int64_t>{3, 3, 0});  // row 2 (0, 1, 0): expert 1, then 0 before 2
  CHECK(r2.balance_loss == Approx(r1.balance_loss).epsilon(1e-6));  // f uses the first choice only
}
