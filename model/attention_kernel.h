// Fused fp32 attention of one (sequence, head) for inference: ctx = softmax(Q K^T * scale) V over
// the sequence's real keys [0, real) (its padding at the right). Every block of four query rows
// runs whole in L1: its scores, their softmax and its context rows, with AVX-512 or AVX2 + FMA
// chosen at run time like model/vector_math.h (the same cap: ONEDNN_MAX_CPU_ISA and
// set_vector_math_max_isa).
//
// Why by hand: at a small model's shapes (seq 48, head 32) oneDNN 2.6's batched matmul runs on
// gemm:jit, its Q K^T at 27 GFLOP/s a core (Intel Xeon with AMX, 2026-12-04); the fused loops
// run a sequence's whole attention (4 heads) in 12 us against 90 us for oneDNN's two products
// and the softmax on one thread, and skip the padded keys that the products multiply
// (bench/README.md, 2026-12-04 (2)).
#pragma once
#include <cstdint>

namespace moekit {

// Whether this CPU (under the cap) runs the fused kernel; without AVX2 + FMA the caller keeps
// oneDNN's products.
bool fused_attention_available();

// Up to this many real keys the fused kernel beats oneDNN in whole-model inference (Intel Xeon
// with AMX, 2026-12-04, small shape hidden 256 / head 64: +7% (int8) at seq 64, even at 96, -3%
// (fp32) and -6% (int8) at 128); longer sequences keep oneDNN's products and softmax.
constexpr int64_t kFusedAttentionMaxKeys = 64;

// q, k, v: the sequence's first row of the head's Q, K and V columns (row stride ld); ctx: its
// first context row (row stride ldc). All seq query rows are computed; keys [real, seq) get
// probability 0 (1 <= real <= seq). round_probs rounds the probabilities to bf16 before P V.
void fused_attention_head(const float* q, const float* k, const float* v, int64_t ld, int64_t seq, int64_t real,
                          int64_t hd, float scale, bool round_probs, float* ctx, int64_t ldc);

}  // namespace moekit
