// MoEBERT's distillation objective (DESIGN.md 4.5) as a trainer LossFn:
//   w_task L_task(student, labels) + w_balance load_balance
//     + lambda ( w_hidden sum_l MSE(h_s[l], h_t[map(l)]) + w_kd KD(student, teacher)
//                + w_attention sum_l KL(A_t[map(l)] || A_s[l]) )
// (the attention term, off by default, is MiniLM/TinyBERT-style: see losses.h attention_kl)
// with h[0] the embedding output, padding masked out of the MSE, the teacher in eval mode.
// L_task and KD follow the model's task (model/loss.h task_loss, losses.h task_kd_loss).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "distill/losses.h"
#include "distill/train_options.h"
#include "distill/trainer.h"

namespace moekit::distill {

struct DistillOptions {
  TrainOptions train;  // train.model is the student
  std::string teacher;
  double lambda = 1.0;
  double w_task = 1.0, w_hidden = 1.0, w_kd = 1.0, w_balance = 0.01, w_attention = 0.0;
  std::string kd = "symmetric-kl";
  double temperature = 1.0;
  std::string layer_map;   // "s:t,..." student layer -> teacher layer; empty = identity / uniform
  std::string train_only;  // parameter groups to train; empty = all

  template <class V>
  void visit(V& v) {
    v("teacher", teacher, "teacher model directory (dense, eval mode)", true);
    v("student", train.model, "student model directory (usually from moefy)", true);
    train.visit_training(v);
    v("lambda", lambda, "weight of the distillation terms (MoEBERT: 1-5 by task)", false);
    v("w-task", w_task, "weight of the cross-entropy on gold labels", false);
    v("w-hidden", w_hidden, "weight of the per-layer hidden-state MSE (inside lambda)", false);
    v("w-kd", w_kd, "weight of the logit KD term (inside lambda)", false);
    v("w-balance", w_balance, "weight of the Switch load-balance loss (gate routers)", false);
    v("w-attention", w_attention,
      "weight of the attention-distribution KL per mapped layer (inside lambda; 0 = off; needs equal heads)", false);
    v("kd", kd, "logit distillation: symmetric-kl (MoEBERT) or kl (Hinton)", false);
    v("temperature", temperature, "softmax temperature of the KD term (T^2 factor when != 1)", false);
    v("layer-map", layer_map, "student:teacher layer pairs, e.g. 0:1,1:3 (default identity or uniform)", false);
    v("train-only", train_only,
      "comma-separated parameter groups to train: embeddings, attention, ffn, experts, router, head", false);
  }

  void validate() const;
};

// Pairs (student hidden index, teacher hidden index), index 0 = embeddings, l+1 = layer l.
std::vector<std::pair<int, int>> hidden_pairs(const std::string& layer_map, int student_layers, int teacher_layers);

// The parameters of the named groups (Error for an unknown group or an empty selection).
ParamList select_groups(const ParamList& params, const std::string& groups);
std::string param_group(const std::string& name);

LossFn distillation_loss(const BertModel& teacher, const DistillOptions& options,
                         std::vector<std::pair<int, int>> pairs);

}  // namespace moekit::distill
