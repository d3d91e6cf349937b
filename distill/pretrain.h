// Masked-LM pretraining (BERT's MLM objective, no next-sentence task, as RoBERTa) on the
// trainer's machinery: the LossFn masks each micro-batch afresh from the trainer's per-step Rng
// (dynamic masking that --resume replays), runs the encoder and the MLM head on the masked rows
// and backpropagates the mean cross-entropy over them.
#pragma once
#include <string>
#include <vector>

#include "distill/masking.h"
#include "distill/train_options.h"
#include "distill/trainer.h"

namespace moekit::distill {

struct PretrainOptions {
  TrainOptions train;  // train.train / train.dev: text files; train.metric unused
  MaskingOptions masking;

  template <class V>
  void visit(V& v) {
    v("model", train.model, "model directory to pretrain (from `moekit init`, or a checkpoint with or without an MLM head)", true);
    train.visit_training(v);
    v("mlm-probability", masking.rate, "fraction of the tokens of each text that are predicted", false);
    v("mask-replace", masking.mask_prob, "of the predicted tokens: fraction replaced by [MASK]", false);
    v("random-replace", masking.random_prob, "of the predicted tokens: fraction replaced by a random token", false);
    v("whole-word-mask", masking.whole_word, "mask a word and all its ## pieces together", false);
  }

  void validate() const;
};

// The MLM loss of one micro-batch (needs model.mlm).
LossFn masked_lm_loss(const MaskVocab& vocab, const MaskingOptions& options);

// Mean MLM loss over `examples` in eval mode, with masks drawn from `seed` (the same every call,
// so successive evaluations compare). Needs model.mlm.
double mlm_eval_loss(const BertModel& model, const std::vector<io::EncodedExample>& examples, const MaskVocab& vocab,
                     const MaskingOptions& options, uint64_t seed, size_t batch_size);

// The loss of one already-masked batch (dropout from `dropout_rng`, eval when null), with the
// gradient of scale x loss accumulated into every grad.
double mlm_step(BertModel& model, const Batch& batch, const MaskedTokens& masked, Rng* dropout_rng, float scale);

// Fine-tuning a pretrained encoder (transformers' from_pretrained into a task model): drops the
// MLM head and gives the model a new classifier for `labels` from `seed`. Returns the note to
// print, or "" when the model had no MLM head (nothing changes then).
std::string to_task_model(BertModel& model, const std::vector<std::string>& labels, uint64_t seed,
                          Task task = Task::single_label);

}  // namespace moekit::distill
