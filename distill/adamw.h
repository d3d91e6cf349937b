// AdamW (Loshchilov & Hutter) with PyTorch's semantics: decoupled weight decay p -= lr*wd*p on
// parameters marked `decay` (not biases or LayerNorm), bias-corrected moments.
#pragma once
#include <cstdint>
#include <vector>

#include "model/param.h"

namespace moekit::distill {

struct AdamWOptions {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.01f;
};

class AdamW {
 public:
  AdamW(const ParamList& params, AdamWOptions options);
  // One update with learning rate lr from the params' current grads; `t` counts from 1.
  void step(float lr);
  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }
  // First and second moments, in the same order as the ParamList (saved in checkpoints).
  std::vector<Mat>& m() { return m_; }
  std::vector<Mat>& v() { return v_; }

 private:
  ParamList params_;
  AdamWOptions opt_;
  std::vector<Mat> m_, v_;
  int64_t t_ = 0;
};

// Scales all grads so their global L2 norm is at most max_norm (no-op when max_norm <= 0).
// Returns the norm before clipping (as torch.nn.utils.clip_grad_norm_).
double clip_grad_norm(const ParamList& params, double max_norm);

}  // namespace moekit::distill
