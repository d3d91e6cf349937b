// Rng::advance (x^n modulo xoshiro256's characteristic polynomial) against stepping, and the
// dropout masks drawn in parallel blocks of one stream against the serial loop, at 1-3 threads.
#include <omp.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "model/dropout.h"
#include "model/rng.h"

using namespace moekit;

namespace {

// The serial definition: entry k is 16-bit lane k % 4 of draw k / 4.
Mat serial_mask(Rng& rng, Eigen::Index rows, Eigen::Index cols, float p) {
  Mat mask(rows, cols);
  const float keep = 1.0f / (1.0f - p);
  const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(p) * 65536.0 + 0.5);
  const Eigen::Index n = mask.size();
  for (Eigen::Index i = 0; i < n; i += 4) {
    uint64_t bits = rng.next();
    for (Eigen::Index k = i; k < std::min(n, i + 4); ++k, bits >>= 16)
      mask.data()[k] = (bits & 0xffff) < threshold ? 0.0f : keep;
  }
  return mask;
}

}  // namespace

TEST_CASE("Rng::advance(n) lands where n calls of next() do", "[rng]") {
  for (uint64_t seed : {0ULL, 1ULL, 42ULL, 0xdeadbeefULL}) {
    for (uint64_t n : {0ULL, 1ULL, 255ULL, 256ULL, 257ULL, 1000ULL, 65537ULL, 300001ULL}) {
      Rng stepped(seed), jumped(seed);
      stepped.next();  // not from the seeded state only
      jumped.next();
      for (uint64_t i = 0; i < n; ++i) stepped.next();
      jumped.advance(n);
      INFO("seed " << seed << " n " << n);
      CHECK(jumped.s == stepped.s);
      CHECK(jumped.next() == stepped.next());
    }
  }
  // Two jumps add up.
  Rng a(7), b(7);
  a.advance(123456);
  a.advance(654321);
  b.advance(777777);
  CHECK(a.s == b.s);
}

TEST_CASE("Dropout masks are the serial stream's at any thread count", "[rng][threads]") {
  const int before = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    for (Eigen::Index rows : {1, 7, 300, 1201}) {  // up to 1201 x 130 = 39k draws: the parallel path
      Rng rng(99), ref(99);
      const Mat got = dropout_mask(rng, rows, 130, 0.1f);
      const Mat want = serial_mask(ref, rows, 130, 0.1f);
      INFO(threads << " threads, " << rows << " rows");
      CHECK(got == want);
      CHECK(rng.s == ref.s);  // the stream continues where the serial loop leaves it
      const double dropped = (got.array() == 0.0f).cast<double>().mean();
      if (rows >= 300) CHECK(std::abs(dropped - 0.1) < 0.01);
    }
  }
  omp_set_num_threads(before);
}
