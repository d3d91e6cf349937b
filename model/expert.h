// One MoE expert (DESIGN.md 4.2): a full FFN sub-block of its own, as MoEBERT's FeedForward:
//   y = LN_e(x + dropout(W2_e act(W1_e x + b1_e) + b2_e))
// W1_e = W1[idx,:], b1_e = b1[idx], W2_e = W2[:,idx] of the dense FFN it came from, with its own
// copies of b2 and the LayerNorm. Names under "...layer.N.moe.experts.E.": intermediate.dense,
// output.dense, output.LayerNorm (the dense FFN's names, so tools that know one know the other).
// In an MoE with norm "layer" (Switch, WideNet) the expert is the FFN part alone,
//   y = W2_e act(W1_e x + b1_e) + b2_e,
// and the layer adds the residual, dropout and its own LayerNorm after the mixture.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"
#include "model/dense_ffn.h"
#include "model/layer_norm.h"
#include "model/linear.h"

namespace moekit {

struct ExpertFFN {
  Linear intermediate;  // W1_e [expert_size, hidden], b1_e
  Linear output;        // W2_e [hidden, expert_size], b2_e (own copy)
  LayerNorm norm;       // own copy of output.LayerNorm (unused and empty when !has_norm)
  bool has_norm = true;
  // Provenance: the dense neuron each row of W1_e came from (-1: none, e.g. a fresh model).
  // Saved as the I32 tensor "...experts.E.neuron_index".
  std::vector<int32_t> neuron_index;
  Activation act = Activation::gelu;

  using Cache = FfnCache;  // the same sub-block maths as the dense FFN, on this expert's rows

  // prefix "...layer.N.moe.experts.E."; weights zero, LayerNorm 1/0, neuron_index -1.
  void init(const std::string& prefix, int64_t hidden, int64_t expert_size, Activation activation, float eps,
            bool with_norm = true);
  // Gives every parameter the prefix `prefix` (e.g. when experts move into a shared MoE FFN).
  void rename(const std::string& prefix);
  int64_t size() const { return intermediate.out(); }

  // The FFN part alone, W2_e act(W1_e x + b1_e) (no b2, residual or LayerNorm): the experts of a
  // partition of the dense neurons sum to the dense FFN's part.
  void ffn_part(MatRef x, Mat& y) const;
  // mask: dropout mask rows for these tokens (nullptr in eval; always nullptr without a norm,
  // where the layer applies dropout after the mixture). addend (with a norm): rows added to the
  // FFN output before dropout and LayerNorm (a tied shared FFN's output).
  void forward(MatRef x, Mat& y, Cache* cache, const Mat* mask, const Mat* addend = nullptr) const;
  // Writes dx (residual included when has_norm), accumulates parameter grads; daddend: the
  // gradient of forward's addend.
  void backward(MatRef dy, const Cache& cache, Mat& dx, Mat* daddend = nullptr);
  void collect(ParamList& params);
};

}  // namespace moekit
