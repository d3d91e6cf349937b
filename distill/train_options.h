// Options of `moekit train`, listed once (gemma's ArgsBase::ForEach): the CLI binder and the
// recipe reader both walk visit(), so a key, its default and its help exist in one place.
#pragma once
#include <cstdint>
#include <string>

namespace moekit::distill {

struct TrainOptions {
  std::string model, train, dev, out, resume;
  int epochs = 3;
  int64_t max_steps = 0;  // > 0 overrides epochs
  int batch_size = 32;
  int grad_accum = 1;
  double lr = 5e-5;
  double weight_decay = 0.01;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  double warmup_ratio = 0.0;
  int64_t warmup_steps = 0;  // > 0 overrides warmup_ratio
  double max_grad_norm = 1.0;
  uint64_t seed = 42;
  int max_seq_len = 0;  // 0 = the model's limit, at most 128 (resolved by the command)
  int64_t eval_every = 0;  // 0 = once per epoch
  int64_t save_every = 0;  // 0 = at every evaluation
  int64_t log_every = 20;
  std::string metric;  // empty = the task's (distill::default_metric: accuracy, pearson, micro_f1, entity_f1)
  int eval_batch_size = 64;
  double capacity_factor = 0;  // MoE training: expert capacity (0 = dropless)
  double router_jitter = 0;    // MoE training: gate input jitter
  std::string precision = "fp32";  // of the matrix products (model/matmul.h); weights, AdamW state stay fp32
  std::string problem_type;  // train only: the head a pretrained (MLM) encoder gets; empty = single-label

  // v(key, member, help, required)
  template <class V>
  void visit(V& v) {
    v("model", model, "model directory to fine-tune (dense or MoE)", true);
    v("problem-type", problem_type,
      "the task head a pretrained (masked-LM) encoder gets: single_label_classification (default), regression, "
      "multi_label_classification or token_classification; a model with a task head keeps its own",
      false);
    visit_training(v);
  }

  // Every option but --model (distill names its models --teacher and --student).
  template <class V>
  void visit_training(V& v) {
    v("train", train, "labelled training data (TSV or JSONL)", true);
    v("dev", dev, "labelled dev data, evaluated every --eval-every steps", true);
    v("out", out, "output directory: best model, metrics.jsonl, checkpoints", true);
    v("resume", resume, "continue the run whose output directory is this (usually = --out)", false);
    v("epochs", epochs, "passes over the training data", false);
    v("max-steps", max_steps, "optimizer steps (overrides --epochs when > 0)", false);
    v("batch-size", batch_size, "examples per micro-batch", false);
    v("grad-accum", grad_accum, "micro-batches per optimizer step", false);
    v("lr", lr, "peak learning rate", false);
    v("weight-decay", weight_decay, "AdamW decoupled weight decay (not on biases/LayerNorm)", false);
    v("adam-beta1", adam_beta1, "AdamW beta1", false);
    v("adam-beta2", adam_beta2, "AdamW beta2", false);
    v("adam-eps", adam_eps, "AdamW epsilon", false);
    v("warmup-ratio", warmup_ratio, "fraction of steps with linear warm-up", false);
    v("warmup-steps", warmup_steps, "warm-up steps (overrides --warmup-ratio when > 0)", false);
    v("max-grad-norm", max_grad_norm, "global gradient-norm clipping (0 = off)", false);
    v("seed", seed, "seed for shuffling and dropout", false);
    v("max-seq-len", max_seq_len, "truncate examples to this many tokens (0 = the model's limit, at most 128)", false);
    v("eval-every", eval_every, "evaluate on --dev every N steps (0 = once per epoch)", false);
    v("save-every", save_every, "write a resumable checkpoint every N steps (0 = at each evaluation)", false);
    v("log-every", log_every, "append a metrics.jsonl line every N steps", false);
    v("metric", metric,
      "dev metric that picks the best checkpoint: accuracy or macro_f1; pearson, spearman or mse (regression); "
      "micro_f1, macro_f1 or accuracy (multi-label); entity_f1, entity_precision, entity_recall or token_accuracy "
      "(token classification); default: accuracy, pearson, micro_f1 or entity_f1 by the model's task",
      false);
    v("eval-batch-size", eval_batch_size, "examples per forward pass in evaluation", false);
    v("capacity-factor", capacity_factor,
      "MoE training: each expert takes at most ceil(F x tokens x top_k / experts) tokens per batch, the rest skip it "
      "through the residual (drop rate in metrics.jsonl); 0 = dropless (default). Inference is always dropless",
      false);
    v("router-jitter", router_jitter,
      "MoE training: multiply the gate router's input by U(1-X, 1+X) noise (Switch); 0 = off", false);
    v("precision", precision,
      "matrix products in fp32 or bf16 (bf16 operands, fp32 accumulation; fp32 master weights, AdamW state and "
      "checkpoints, as PyTorch autocast)",
      false);
  }

  // Throws Error naming the bad option, before any work.
  void validate() const;
};

}  // namespace moekit::distill
