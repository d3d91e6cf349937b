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
#include <vector>

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
// data[i*s0 + j*s1 + r*row + c*col] (in elements). Lets attention read Q, K and V per (sequence,
// head) straight from the [tokens, hidden] projections and write the context back there, without
// head-major copies. Elements are floats, or bfloat16 bits where `bf16` is set.
struct StridedMatrices {
  void* data;
  int64_t s0, s1, row, col;
  bool bf16 = false;
};

// c_ij = a_ij b_ij for the b0 x b1 grid (a_ij [m, k], b_ij [k, n], c_ij [m, n]), one oneDNN call.
// a and b are both fp32 or both bf16 (then fp32 accumulation); c is fp32 or bf16 (rounded).
void strided_batched_matmul(const StridedMatrices& a, const StridedMatrices& b, const StridedMatrices& c, int64_t b0,
                            int64_t b1, int64_t m, int64_t k, int64_t n);

// Rounds every entry to the nearest bfloat16 (ties to even), in place; NaN stays NaN.
void round_to_bf16(float* data, size_t n);

// Activations held as bfloat16 bits (row-major) between two bf16 products, so that one product's
// output feeds the next without a float round trip: the producer rounds once, where the consumer
// would have rounded its input. Grown, never shrunk, and not zeroed (every product overwrites it).
class Bf16Matrix {
 public:
  Bf16Matrix() = default;
  Bf16Matrix(const Bf16Matrix& other);  // copies the rows x cols entries (caches are copyable)
  Bf16Matrix& operator=(const Bf16Matrix& other);
  Bf16Matrix(Bf16Matrix&&) noexcept = default;
  Bf16Matrix& operator=(Bf16Matrix&&) noexcept = default;
  void resize(Eigen::Index rows, Eigen::Index cols);
  Eigen::Index rows() const { return rows_; }
  Eigen::Index cols() const { return cols_; }
  uint16_t* data() { return data_.get(); }
  const uint16_t* data() const { return data_.get(); }

 private:
  std::unique_ptr<uint16_t[]> data_;
  size_t capacity_ = 0;
  Eigen::Index rows_ = 0, cols_ = 0;
};
// out = x rounded to bf16 (resized).
void to_bf16(MatRef x, Bf16Matrix& out);
// The floats a Bf16Matrix holds (tests and debugging).
Mat from_bf16(const Bf16Matrix& x);

// c = op(a) op(b) (or += with accumulate) on operands already rounded to bf16, fp32 accumulation:
// a training step rounds a tensor once for the two products that read it. bf16 kernels only
// (matmul_isa().bf16_native), else Error.
void matmul(const Bf16Matrix& a, bool transpose_a, const Bf16Matrix& b, bool transpose_b, Eigen::Ref<Mat> c,
            bool accumulate = false);

// An elementwise function run in a product's epilogue, on the fp32 sum after the bias.
enum class Epilogue { none, gelu_erf, gelu_tanh, relu };

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
  // Float kinds: y = epilogue(x w^T + b), y [M,N] (resized). The epilogue runs inside the product
  // (an FFN's up-projection and its GELU in one pass over the output).
  void multiply(MatRef x, Mat& y, Epilogue epilogue = Epilogue::none) const;
  // int8: acc [m, N] row-major = xq [m, K] * q^T, exact while xq <= int8_max_activation().
  void multiply_int8(const uint8_t* xq, Eigen::Index m, int32_t* acc) const;

  // int8: the values q [N, K] row-major, read back from the packed layout (to stack weights).
  std::vector<int8_t> int8_values() const;

  // A bf16 weight on bf16 kernels (matmul_isa().bf16_native): the products below are available.
  // Elsewhere bf16 runs as fp32 on rounded operands, where bf16 activations would only add copies.
  bool bf16_activations() const { return kind_ == Kind::bf16 && bf16_native_; }
  // y = epilogue(x w^T + b), rounded to bf16 (y resized). The epilogue runs inside the product, so
  // the fp32 sum never reaches memory (an FFN's up-projection and its GELU in one pass).
  void multiply(MatRef x, Bf16Matrix& y, Epilogue epilogue = Epilogue::none) const;
  // y = x w^T + b from bf16 x (y resized).
  void multiply(const Bf16Matrix& x, Mat& y) const;

  struct Impl;

 private:
  Kind kind_;
  bool bf16_native_ = false;
  Eigen::Index rows_ = 0, cols_ = 0;
  std::unique_ptr<Impl> impl_;
};

// Largest unsigned activation code the int8 product keeps exact on this CPU: 255 with VNNI or AMX
// (32-bit dot products), 127 elsewhere (AVX2's vpmaddubsw saturates a pair of 255 * 127 products
// at 16 bits, so activations get 7 bits there, as PyTorch's reduce_range does on such CPUs).
int int8_max_activation();

}  // namespace moekit
