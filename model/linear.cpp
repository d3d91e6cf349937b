#include "model/linear.h"

#include <algorithm>

#include "model/error.h"

namespace moekit {

namespace {

// Training an int8 layer is refused rather than served by dequantising on demand: the float
// weights were released at load (that is the memory saving), so there is nothing for the
// optimizer to update, and a float backward under an int8 forward would train a different
// function from the one that runs. Every command that trains loads float weights, so only a
// programming error gets here. (In a model forward the attention's query Linear is the first
// to see the cache, outside any OpenMP region, so this throws cleanly.)
[[noreturn]] void refuse_training(const std::string& name) {
  fail("", name + ": int8 weights are inference-only; load the model for training (dequantised float weights) to "
                  "train through it");
}

}  // namespace

void Linear::init(const std::string& name, Eigen::Index in, Eigen::Index out) {
  weight.init(name + ".weight", out, in, true);
  bias.init_vector(name + ".bias", out, false);
  int8_weight.reset();
  packed.reset();
}

void Linear::set_int8_weight(const QuantizedMatrix& q) {
  const Eigen::Index rows = out(), cols = in();
  if (q.rows != rows || q.cols != cols)
    fail("", weight.name + ": expected " + shape_str(rows, cols) + ", got " + shape_str(q.rows, q.cols));
  int8_weight = pack_int8(q);
  weight.value = Mat();
  weight.grad = Mat();
  packed.reset();
}

void Linear::set_precision(Precision p) {
  if (p != precision) packed.reset();
  precision = p;
}

void Linear::pack_for_inference() {
  if (int8_weight) return;
  packed = std::make_shared<const PackedWeight>(weight.value, RowVec(bias.value.row(0)), precision);
}

namespace {

// y += bias on every row and, when `from` is given, *keep = *from, in parallel over row blocks:
// the serial Eigen passes over a [4096, 1024] product were 3% of a small fp32 training step
// (Intel Xeon with AMX, 2026-12-04). The same values as the serial passes.
void add_bias_and_keep(const RowVec& bias, Mat& y, const MatRef* from, Mat* keep) {
  const Eigen::Index n = y.rows(), cols = y.cols();
  constexpr Eigen::Index kBlock = 64;
  const Eigen::Index blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (blocks > 1 && n * cols >= (1 << 16))
  for (Eigen::Index b = 0; b < blocks; ++b) {
    const Eigen::Index r0 = b * kBlock, rows = std::min(kBlock, n - r0);
    y.middleRows(r0, rows).rowwise() += bias.row(0);
    if (from) keep->middleRows(r0, rows) = from->middleRows(r0, rows);
  }
}

}  // namespace

void Linear::forward(MatRef x, Mat& y, Cache* cache) const {
  if (int8_weight) {
    if (cache) refuse_training(weight.name);
    int8_linear(x, *int8_weight, bias.value, y);
    return;
  }
  if (!cache && packed) {
    packed->multiply(x, y);  // bias included
    return;
  }
  if (cache && precision == Precision::bf16 && matmul_isa().bf16_native) {
    to_bf16(x, cache->x16);
    thread_local Bf16Matrix w16;
    to_bf16(weight.value, w16);
    y.resize(x.rows(), out());
    matmul(cache->x16, false, w16, true, y);
    cache->x.resize(0, x.cols());  // no rows: x16 holds them
  } else {
    matmul_nt(x, weight.value, y, precision);
    if (cache) {
      cache->x16.resize(0, 0);
      cache->x.resize(x.rows(), x.cols());
    }
  }
  add_bias_and_keep(bias.value, y, cache && cache->x.size() > 0 ? &x : nullptr, cache ? &cache->x : nullptr);
}

// y = x W^T + b  =>  dW += dy^T x,  db += sum_rows(dy),  dx = dy W.
void Linear::backward(MatRef dy, const Cache& cache, Mat* dx) {
  if (int8_weight) refuse_training(weight.name);
  packed.reset();  // the weights are about to be trained
  const bool rounded_x = cache.x.size() == 0 && cache.x16.rows() == dy.rows() && cache.x16.rows() > 0;
  if (rounded_x && !(precision == Precision::bf16 && matmul_isa().bf16_native))
    fail(weight.name, "backward: the forward ran bf16 kernels, the backward would not");
  if (rounded_x) {
    // Each tensor rounded once for its two products: dy for dW and dx, x from the forward.
    thread_local Bf16Matrix dy16, w16;
    to_bf16(dy, dy16);
    matmul(dy16, true, cache.x16, false, weight.grad_buffer(), true);
    if (dx) {
      to_bf16(weight.value, w16);
      dx->resize(dy.rows(), weight.value.cols());
      matmul(dy16, false, w16, false, *dx);
    }
  } else {
    matmul_tn_acc(dy, cache.x, weight.grad_buffer(), precision);
    if (dx) matmul_nn(dy, weight.value, *dx, precision);
  }
  // Row by row: contiguous, vectorised adds (a column-wise sum of a row-major matrix strides).
  Mat& db = bias.grad_buffer();
  for (Eigen::Index r = 0; r < dy.rows(); ++r) db += dy.row(r);
}

void Linear::collect(ParamList& params) {
  params.push_back(&weight);
  params.push_back(&bias);
}

}  // namespace moekit
