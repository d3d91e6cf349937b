// The one matrix-multiply interface of the model core (DESIGN 3). oneDNN does every product; it
// picks AMX, AVX-512 (VNNI, BF16) or AVX2 code when the program runs, so one binary is fast on
// every x86 server CPU and no source file needs -m flags. Eigen keeps the element-wise work.
//
// Products of row-major float matrices (shapes as the names say, x [M,K]):
//   matmul_nt:      y = x w^T     (w [N,K]: a Linear's forward, y = x W^T)
//   matmul_nn:      y = x w       (w [K,N]: a Linear's input gradient, dx = dy W)
//   matmul_tn_acc:  g += a^T b    (a [M,N], b [M,K], g [N,K]: a Linear's weight gradient)
// Precision::bf16 rounds both operands to bfloat16 (round to nearest even) and accumulates in
// fp32, PyTorch autocast's contract. On a CPU whose oneDNN has no fast bf16 matmul (no AVX512_BF16
// or AMX) the same numbers come from the fp32 kernel on the rounded operands: a product of two
// bf16 values is exact in fp32, so only the summation order differs.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "model/tensor.h"

namespace moekit {

enum class Precision { fp32, bf16 };
const char* precision_name(Precision p);
// "fp32" | "bf16", else Error naming `what` (an option or a file).
Precision parse_precision(const std::string& s, const std::string& what = "--precision");

// What oneDNN runs on this CPU (ONEDNN_MAX_CPU_ISA caps it): e.g. "avx2", "avx512_core_amx".
// bf16 products run oneDNN's bf16 kernels only where they beat its fp32 kernels on the rounded
// operands (same numbers but the summation order): with AMX. On AVX512_BF16 without AMX,
// oneDNN 2.6's bf16 matmuls ran at half its fp32 speed (Intel Xeon, model 207, 2026-12-02:
// 157-176 vs 302-346 GFLOP/s on BERT shapes), so they run as fp32 there.
// MOEKIT_BF16_KERNELS=bf16 forces the bf16 kernels wherever the CPU has them (tests of that path).
struct MatmulIsa {
  std::string name;
  bool bf16_hardware = false;  // AVX512_BF16 or AMX
  bool bf16_native = false;    // bf16 products on bf16 kernels (see above), else fp32 on rounded operands
  bool int8_vnni = false;      // int8 dot products without 16-bit saturation (VNNI or AMX)
};
const MatmulIsa& matmul_isa();
// oneDNN's implementation name of the products run so far, per kind, e.g.
// "fp32 brg:avx512_core, int8 gemm:jit" (for bench rows; empty before the first product).
std::string matmul_impls();

// The general form: c = op(a) op(b), or c += op(a) op(b) with accumulate, op = transpose when
// asked; c must already have the product's shape (it may be a block of a larger matrix).
void matmul(MatRef a, bool transpose_a, MatRef b, bool transpose_b, Eigen::Ref<Mat> c, bool accumulate = false,
            Precision p = Precision::fp32);
void matmul_nt(MatRef x, MatRef w, Mat& y, Precision p = Precision::fp32);
void matmul_nn(MatRef x, MatRef w, Mat& y, Precision p = Precision::fp32);
void matmul_tn_acc(MatRef a, MatRef b, Mat& g, Precision p = Precision::fp32);

// A batch of independent products, one oneDNN call: for each i < batch,
//   c_i = op(a_i) op(b_i),   a_i = a + i*m*k (op(a_i) [m, k]), b_i = b + i*k*n (op(b_i) [k, n]),
//   c_i = c + i*m*n [m, n],  every matrix contiguous and row-major before its op.
// Attention's per-(sequence, head) products: one call per layer instead of thousands of tiny ones.
void batched_matmul(const float* a, bool transpose_a, const float* b, bool transpose_b, float* c, int64_t batch,
                    int64_t m, int64_t k, int64_t n, Precision p = Precision::fp32);

// A [b0, b1] grid of matrices inside one buffer: matrix (i, j) has element (r, c) at
// data[i*s0 + j*s1 + r*row + c*col]. Lets attention read Q, K and V per (sequence, head) straight
// from the [tokens, hidden] projections and write the context back there, without head-major copies.
struct StridedMatrices {
  float* data;
  int64_t s0, s1, row, col;
};

// c_ij = a_ij b_ij for the b0 x b1 grid (a_ij [m, k], b_ij [k, n], c_ij [m, n]), fp32, one oneDNN call.
void strided_batched_matmul(const StridedMatrices& a, const StridedMatrices& b, const StridedMatrices& c, int64_t b0,
                            int64_t b1, int64_t m, int64_t k, int64_t n);

// Rounds every entry to the nearest bfloat16 (ties to even), in place; NaN stays NaN.
void round_to_bf16(float* data, size_t n);

// A weight w [N,K] prepared once for inference products y = x w^T + b: converted (bf16 or int8)
// and laid out as oneDNN prefers on this CPU, so no call repacks it. Immutable once built, so
// copies of a layer share it and threads may use it at once.
class PackedWeight {
 public:
  enum class Kind { fp32, bf16, int8 };
  // fp32 / bf16 from float weights; bias [1, N] or empty.
  PackedWeight(const Mat& w, const RowVec& bias, Precision p);
  // int8: q row-major [n, k] (values in [-127, 127]); the caller keeps scales and the epilogue.
  PackedWeight(const int8_t* q, Eigen::Index n, Eigen::Index k);
  ~PackedWeight();
  PackedWeight(const PackedWeight&) = delete;
  PackedWeight& operator=(const PackedWeight&) = delete;

  Kind kind() const { return kind_; }
  Eigen::Index rows() const { return rows_; }  // N
  Eigen::Index cols() const { return cols_; }  // K
  // Float kinds: y = x w^T + b, y [M,N] (resized).
  void multiply(MatRef x, Mat& y) const;
  // int8: acc [m, N] row-major = xq [m, K] * q^T, exact while xq <= int8_max_activation().
  void multiply_int8(const uint8_t* xq, Eigen::Index m, int32_t* acc) const;

  struct Impl;

 private:
  Kind kind_;
  Eigen::Index rows_ = 0, cols_ = 0;
  std::unique_ptr<Impl> impl_;
};

// Largest unsigned activation code the int8 product keeps exact on this CPU: 255 with VNNI or AMX
// (32-bit dot products), 127 elsewhere (AVX2's vpmaddubsw saturates a pair of 255 * 127 products
// at 16 bits, so activations get 7 bits there, as PyTorch's reduce_range does on such CPUs).
int int8_max_activation();

}  // namespace moekit
