// Fused fp32 inference of one post-LN MoE expert (model/expert.h) on its routed token rows:
//   y[rows[i]] = scale[i] * LN(x[rows[i]] + W2 act(W1 x[rows[i]] + b1) + b2)
// in one pass over blocks of six rows: the rows are read from x where they are (no gathered copy),
// the hidden layer of a block stays in L1 (its activation by model/activation.h's
// activation_values), and each output row is written once, into its place in
// y. AVX-512 or AVX2 + FMA chosen at run time like model/vector_math.h (the same cap:
// ONEDNN_MAX_CPU_ISA and set_vector_math_max_isa).
//
// Why by hand: a small model's experts are narrow (hidden 128, 64 neurons in the demo), where
// oneDNN 2.6 runs the products at 77 GFLOP/s a core for the up-projection with its GELU and 107
// for the down (Intel Xeon with AMX, 2026-12-04, against 145 for the QKV product of the same
// rows), and every expert chunk pays a gather, two primitive calls and a LayerNorm pass on top.
// Large experts keep oneDNN (expert_kernel_applies): the kernel does not block for cache.
#pragma once
#include <cstdint>
#include <vector>

#include "model/activation.h"
#include "model/tensor.h"

namespace moekit {

// One expert's weights laid out for the kernel: W1 and W2 transposed (the rows the inner loop
// reads are contiguous), the biases and the LayerNorm.
struct ExpertKernelWeights {
  int64_t hidden = 0, size = 0;
  Activation act = Activation::gelu;
  float eps = 1e-12f;
  std::vector<float> w1t;  // [hidden][size]: W1^T
  std::vector<float> b1;   // [size]
  std::vector<float> w2t;  // [size][hidden]: W2^T
  std::vector<float> b2;   // [hidden]
  std::vector<float> gamma, beta;  // [hidden]
};

// Whether the kernel runs an expert of this shape on this CPU (under the cap):
// AVX2 + FMA, hidden and size multiples of 16, each weight matrix at most
// kExpertKernelMaxWeights floats (it then stays in L2 while a block of rows streams it); and not
// switched off by MOEKIT_EXPERT_KERNEL=off (oneDNN's products then, for A/B runs).
// Whole-model A/B at hidden 256 (Intel Xeon with AMX, 2026-12-04): 64 and 128 neurons (16k, 32k
// floats) +4%, 256 neurons (64k) -1 to -4%: beyond 32k oneDNN's blocked products win.
constexpr int64_t kExpertKernelMaxWeights = 32 * 1024;
bool expert_kernel_applies(int64_t hidden, int64_t size);

// w1 [size, hidden], w2 [hidden, size] (Linear's layout), b1 [1, size], b2, gamma, beta [1, hidden].
ExpertKernelWeights pack_expert_kernel(MatRef w1, MatRef b1, MatRef w2, MatRef b2, MatRef gamma, MatRef beta,
                                       float eps, Activation act);

// The n rows rows[0..n) of x (row stride ldx) through the expert; row rows[i] of y (row stride
// ldy) gets scale[i] times the result (scale may be null: 1). Rows must be distinct and inside
// both matrices; x and y must not overlap.
void expert_kernel_forward(const ExpertKernelWeights& w, const float* x, int64_t ldx, const int32_t* rows,
                           const float* scale, int64_t n, float* y, int64_t ldy);

}  // namespace moekit
