// The int8 kernels (model/int8_matmul.h): the AVX-512 VNNI and portable kernels produce the same
// int32 sums, equal to a plain loop; outputs do not depend on the kernel or the thread count.
// Integer sums are exact, so every comparison here is ==.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "model/int8_matmul.h"

using namespace moekit;

namespace {

// int8 values over the whole symmetric range, -127 and 127 included, with per-row scales.
QuantizedMatrix random_int8(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> v(-127, 127);
  QuantizedMatrix m;
  m.rows = rows;
  m.cols = cols;
  for (Eigen::Index i = 0; i < rows * cols; ++i) m.q.push_back(static_cast<int8_t>(v(rng)));
  for (Eigen::Index r = 0; r < rows; ++r) m.scale.push_back(0.01f * float(r + 1));
  return m;
}

Int32Mat plain_product(const QuantizedMatrix& x, const QuantizedMatrix& w) {
  Int32Mat acc(x.rows, w.rows);
  for (Eigen::Index i = 0; i < x.rows; ++i)
    for (Eigen::Index j = 0; j < w.rows; ++j) {
      int32_t s = 0;
      for (Eigen::Index k = 0; k < x.cols; ++k) s += int32_t(x.q[size_t(i * x.cols + k)]) * w.q[size_t(j * w.cols + k)];
      acc(i, j) = s;
    }
  return acc;
}

struct Shape {
  Eigen::Index n, in, out;
};
// Rows off the 4-row block and the 64-row chunk, inputs off the 4-byte group, outputs off the
// 16-lane vector and the 64-row panel, and this project's real shapes.
const Shape kShapes[] = {{1, 1, 1}, {5, 3, 7}, {67, 130, 65}, {130, 64, 64}, {64, 256, 256}, {9, 1024, 256}};

}  // namespace

TEST_CASE("int8 kernels: portable and VNNI sums equal a plain loop exactly", "[int8]") {
  for (const Shape& s : kShapes) {
    INFO("n " << s.n << ", in " << s.in << ", out " << s.out);
    const QuantizedMatrix x = random_int8(s.n, s.in, 1), w = random_int8(s.out, s.in, 2);
    const PackedInt8Matrix packed = pack_int8(w);
    const Int32Mat expected = plain_product(x, w);
    CHECK(int8_matmul(x, packed, Int8Kernel::portable) == expected);
    if (int8_vnni_supported()) CHECK(int8_matmul(x, packed, Int8Kernel::vnni) == expected);
  }
  if (!int8_vnni_supported()) WARN("this CPU has no AVX-512 VNNI: only the portable kernel was checked");
}

TEST_CASE("int8 kernels: the extreme sums fit int32 and stay exact", "[int8]") {
  // x = -127 everywhere (u8 1 after the +128 offset) and x = 127 (u8 255) against w = +-127: the
  // largest magnitudes the offset trick and the row sums produce.
  const Eigen::Index in = 1000;
  QuantizedMatrix x = random_int8(2, in, 3), w = random_int8(3, in, 4);
  std::fill(x.q.begin(), x.q.begin() + in, int8_t{-127});
  std::fill(x.q.begin() + in, x.q.end(), int8_t{127});
  std::fill(w.q.begin(), w.q.begin() + in, int8_t{127});
  std::fill(w.q.begin() + in, w.q.begin() + 2 * in, int8_t{-127});
  const Int32Mat expected = plain_product(x, w);
  CHECK(expected(1, 0) == 127 * 127 * in);
  CHECK(int8_matmul(x, pack_int8(w), Int8Kernel::portable) == expected);
  if (int8_vnni_supported()) CHECK(int8_matmul(x, pack_int8(w), Int8Kernel::vnni) == expected);
}

TEST_CASE("int8_linear gives the same floats on both kernels and any thread count", "[int8][threads]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  Mat x(131, 96);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = g(rng);
  Mat w(70, 96);
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = 0.1f * g(rng);
  const Mat bias = RowVec::LinSpaced(70, -1, 1);
  const PackedInt8Matrix packed = pack_int8(quantize_int8_rows(w));
  const int threads = omp_get_max_threads();
  Mat ref, y;
  omp_set_num_threads(1);
  int8_linear(x, packed, bias, ref, Int8Kernel::portable);
  omp_set_num_threads(2);
  int8_linear(x, packed, bias, y, Int8Kernel::portable);
  CHECK(y == ref);
  if (int8_vnni_supported()) {
    int8_linear(x, packed, bias, y, Int8Kernel::vnni);
    CHECK(y == ref);
    omp_set_num_threads(1);
    int8_linear(x, packed, bias, y, Int8Kernel::vnni);
    CHECK(y == ref);
  }
  omp_set_num_threads(threads);
}

TEST_CASE("int8_linear: a non-finite input row gives NaN outputs in that row only", "[int8]") {
  Mat x = Mat::Ones(6, 8);
  x(2, 3) = INFINITY;
  x(4, 0) = NAN;
  const PackedInt8Matrix packed = pack_int8(quantize_int8_rows(Mat::Ones(3, 8)));
  Mat y;
  int8_linear(x, packed, Mat(), y);
  for (Eigen::Index i = 0; i < 6; ++i) {
    INFO("row " << i);
    if (i == 2 || i == 4) {
      CHECK(y.row(i).array().isNaN().all());
    } else {
      CHECK(y.row(i).isApprox(Mat::Constant(1, 3, 8.0f)));
    }
  }
}

TEST_CASE("int8 kernels refuse mismatched shapes and an unavailable kernel", "[int8]") {
  const PackedInt8Matrix packed = pack_int8(quantize_int8_rows(Mat::Ones(3, 4)));
  Mat y;
  REQUIRE_THROWS_WITH(int8_linear(Mat::Ones(2, 5), packed, Mat(), y), Catch::Contains("input has 5 columns, weight expects 4"));
  REQUIRE_THROWS_WITH(int8_linear(Mat::Ones(2, 4), packed, Mat::Ones(1, 2), y), Catch::Contains("bias has 2 entries, expected 3"));
  if (!int8_vnni_supported())
    REQUIRE_THROWS_WITH(int8_linear(Mat::Ones(2, 4), packed, Mat(), y, Int8Kernel::vnni), Catch::Contains("VNNI"));
}
