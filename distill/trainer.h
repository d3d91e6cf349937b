// The training loop shared by `train` and `distill`: micro-batches with gradient accumulation,
// global-norm clipping, AdamW with linear warm-up/decay, dev evaluation every N steps keeping the
// best model in OUT, metrics.jsonl, a progress line, resumable checkpoints.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "distill/communicator.h"
#include "distill/train_options.h"
#include "io/batching.h"
#include "io/vocab.h"
#include "model/bert.h"

namespace moekit::distill {

// Loss of one micro-batch: runs forward and backward on the model, accumulating grads already
// multiplied by `scale` (1 / grad_accum). Returns the total and its named terms (unscaled).
struct LossTerms {
  double total = 0;
  std::map<std::string, double> terms;
  std::vector<std::vector<int64_t>> expert_tokens;  // MoE: [layer][expert] real tokens routed
  int64_t routed_slots = 0, dropped_slots = 0;      // MoE with --capacity-factor
};
using LossFn = std::function<LossTerms(BertModel& model, const Batch& batch, Rng& dropout_rng, float scale)>;

// Task loss only, by the model's task (model/loss.h task_loss): cross-entropy, MSE or BCE.
LossFn task_loss_fn();

struct TrainData {
  std::vector<io::EncodedExample> train, dev;
  std::vector<std::filesystem::path> tokenizer_files;  // copied into every saved model (io::save_model)
};

struct TrainResult {
  int64_t steps = 0;
  double best_metric = 0;
  int64_t best_step = 0;
  double final_loss = 0;
  double tokens_per_second = 0;
  std::string metric;  // the dev metric that picked the best model
};

// Dev evaluation: the values for metrics.jsonl (each logged as "dev_<name>") and the one, named
// `metric`, that picks the best model. Empty fn = classification (accuracy and macro-F1, best
// by options.metric).
struct DevEval {
  std::function<std::map<std::string, double>(const BertModel& model)> fn;
  std::string metric;
  bool lower_is_better = false;
};

// Trains `model` in place. `trainable` = parameters updated (others frozen); empty = all.
// The best model by options.metric is written to options.out as a model directory.
// Data-parallel over `comm` (every rank calls train with the same arguments): each optimizer step
// takes ranks x grad_accum micro-batches of the data plan, rank r the slots r, r + ranks, ...; the
// gradients are summed over the ranks, so N ranks equal one process with N x --grad-accum. The
// default dev evaluation is split over the ranks; a custom dev_eval runs on rank 0 alone. Only
// rank 0 writes files and progress.
TrainResult train(BertModel& model, const io::Vocab* vocab, bool do_lower_case, const TrainData& data,
                  const TrainOptions& options, const LossFn& loss, const ParamList& trainable = {},
                  const DevEval& dev_eval = {}, Communicator& comm = single_process());

}  // namespace moekit::distill
