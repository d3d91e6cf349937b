// Fused int8 inference of one post-LN MoE expert on its routed token rows, the int8 export's
// arithmetic bit for bit (model/int8_matmul.h):
//   y[rows[i]] = scale[i] * LN(x + E(x) (+ S(x)))   for x = x[rows[i]],
// E the expert's int8 FFN and S a tied shared FFN's (int8 runs it beside the expert: per-row
// scales keep [W2_s W2_e] from joining). Per block of six rows: x quantised in place, one VNNI
// product for the up-projections of S and E together (their rows stacked), the hidden codes,
// the down-projections, the residual and the LayerNorm, written into the row's place in y.
// The integer sums are exact and every float step is the reference's, so the output equals the
// oneDNN path's exactly.
//
// Why by hand: for the demo's experts (hidden 128, 32 + 32 neurons) each expert chunk paid a
// gather, four int8 products (oneDNN calls with their own quantisation passes), the shared FFN's
// whole-batch products and a LayerNorm pass; int8 ran only 1.17x the fp32 MoE (Intel Xeon with
// AMX, 2026-12-04).
#pragma once
#include <cstdint>
#include <vector>

#include "model/activation.h"
#include "model/int8_matmul.h"
#include "model/tensor.h"

namespace moekit {

// One int8 weight [n outputs, k inputs] in the kernel's layout: groups of four inputs, for each
// output its four codes (q[((g * n) + j) * 4 + t] = q(j, 4 g + t)), as VNNI's dot product reads them.
struct Int8KernelWeight {
  int64_t n = 0, k = 0;
  std::vector<int8_t> q;
  std::vector<float> scale;      // [n]
  std::vector<int32_t> row_sum;  // [n]
  std::vector<float> bias;       // [n]
};

struct ExpertKernelInt8Weights {
  int64_t hidden = 0, shared = 0, size = 0;  // S = shared (0: none), E = size
  Activation act = Activation::gelu;
  float eps = 1e-12f;
  Int8KernelWeight up;           // [S + E, hidden]: S's rows, then E's
  Int8KernelWeight down;         // [hidden, E]
  Int8KernelWeight shared_down;  // [hidden, S] (empty without S)
  std::vector<float> gamma, beta;
};

// Whether the kernel runs these shapes on this CPU: AVX-512 with VNNI and 8-bit activation codes
// (int8_max_activation() 255), hidden and S + E multiples of 16, S and E of 4, each weight at
// most kExpertKernelInt8MaxWeights codes; not switched off by MOEKIT_EXPERT_KERNEL=off.
// Whole-model A/B at hidden 256 (Intel Xeon with AMX, 2026-12-04): 64 neurons (16k codes) +2 to
// +9%, 128 (32k) even, 256 (64k) -12%: the weights stream from L2 for every six rows.
constexpr int64_t kExpertKernelInt8MaxWeights = 32 * 1024;
bool expert_kernel_int8_applies(int64_t hidden, int64_t shared, int64_t size);

// The expert's int8 weights (w1 [E, hidden], w2 [hidden, E]) and biases, a tied shared FFN's
// (s1, s2; null without one), the expert's LayerNorm.
ExpertKernelInt8Weights pack_expert_kernel_int8(const PackedInt8Matrix& w1, MatRef b1, const PackedInt8Matrix& w2,
                                                MatRef b2, const PackedInt8Matrix* s1, MatRef sb1,
                                                const PackedInt8Matrix* s2, MatRef sb2, MatRef gamma, MatRef beta,
                                                float eps, Activation act);

// As expert_kernel_forward (model/expert_kernel.h): rows distinct, inside x and y; scale may be null.
void expert_kernel_int8_forward(const ExpertKernelInt8Weights& w, const float* x, int64_t ldx, const int32_t* rows,
                                const float* scale, int64_t n, float* y, int64_t ldy);

}  // namespace moekit
