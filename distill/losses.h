// Distillation losses with their gradients (DESIGN.md 4.5). Every function returns the loss and
// writes dL/d(student input) when `grad` is given; teacher inputs get no gradient.
#pragma once
#include <vector>

#include "model/batch.h"
#include "model/config.h"
#include "model/tensor.h"

namespace moekit::distill {

// Mean squared error over the real tokens (mask 1) and the hidden dimension:
//   L = sum_{t real} |hs_t - ht_t|^2 / (n_real * hidden);  dL/dhs_t = 2 (hs_t - ht_t) / (n_real * hidden).
// Padding rows get zero gradient (MoEBERT's code included them; we mask them out).
double masked_mse(MatRef student, MatRef teacher, const std::vector<uint8_t>& mask, Mat* grad);

enum class KdKind { kl, symmetric_kl };

// Knowledge distillation on logits at temperature T, mean over rows:
//   kl:            KL(p_t || p_s)                    dL/dzs = (p_s - p_t) / T
//   symmetric_kl:  (KL(p_s || p_t) + KL(p_t || p_s)) / 2
//                  with dKL(p_s||p_t)/dzs_k = p_s,k (a_k - KL) / T, a = log p_s - log p_t
// times T^2 when T != 1 (Hinton et al.), so gradients keep their scale.
double kd_loss(MatRef student_logits, MatRef teacher_logits, KdKind kind, double temperature, Mat* grad);

// The KD term of a task head (model/config.h Task), mean over rows and labels where not said:
//   single_label  kd_loss above (KL or symmetric KL of the softmax at T)
//   regression    MSE(z_s, z_t) over the examples (T must be 1: there is no distribution to soften)
//   multi_label   BCE of sigmoid(z_s / T) against the teacher's probabilities sigmoid(z_t / T),
//                 minus the teacher's own entropy (so a student equal to its teacher scores 0:
//                 the Bernoulli KL(p_t || p_s); the gradient is the BCE's), times T^2 when T != 1:
//                 dL/dzs = T (sigmoid(zs/T) - sigmoid(zt/T)) / n   (T^2 / T; n = rows * labels)
//   token_classification  kd_loss (KL or symmetric KL at T) of every real token (batch->mask 1),
//                 mean over those tokens; padding rows get zero gradient
//   question_answering  kd_loss of the span-start distribution over each sequence's real tokens,
//                 and of the span-end one, averaged (MoEBERT's KD on SQuAD)
// The per-token heads need `batch` (its mask and shape).
double task_kd_loss(Task task, MatRef student_logits, MatRef teacher_logits, KdKind kind, double temperature,
                    Mat* grad, const Batch* batch = nullptr);

// Attention distillation (MiniLM's KL of attention distributions; TinyBERT matches the same maps
// with an MSE): for every sequence b, head and real query row i,
//   KL(P_t || P_s) = sum_j P_t log(P_t / P_s) over the keys, averaged over those rows.
// probs as Attention caches them: [batch*heads*seq, seq], block (b, head) at rows
// (b*heads + head)*seq. grad = dL/d(student scores) = (P_s - P_t) / rows on real query rows, 0 on
// padded ones (their keys are masked, so P is 0 there for both).
double attention_kl(MatRef student_probs, MatRef teacher_probs, const std::vector<uint8_t>& mask, int64_t seq,
                    int64_t heads, Mat* grad);

}  // namespace moekit::distill
