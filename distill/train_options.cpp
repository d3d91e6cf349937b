#include "distill/train_options.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <filesystem>

#include "model/config.h"
#include "model/error.h"

namespace moekit::distill {

namespace {
void need(bool ok, const std::string& msg) {
  if (!ok) fail("", msg);
}
void file_exists(const std::string& path, const char* option) {
  if (!std::filesystem::exists(path)) fail(path, std::string("no such file (") + option + ")");
}
}  // namespace

void TrainOptions::validate() const {
  need(epochs > 0 || max_steps > 0, "--epochs must be positive (or set --max-steps)");
  need(max_steps >= 0, "--max-steps must not be negative");
  need(batch_size > 0, "--batch-size must be positive, got " + std::to_string(batch_size));
  need(grad_accum > 0, "--grad-accum must be positive, got " + std::to_string(grad_accum));
  need(lr > 0 && lr < 1, "--lr must be in (0, 1), got " + std::to_string(lr));
  need(weight_decay >= 0, "--weight-decay must not be negative");
  need(adam_beta1 >= 0 && adam_beta1 < 1 && adam_beta2 >= 0 && adam_beta2 < 1, "--adam-beta1/2 must be in [0, 1)");
  need(adam_eps > 0, "--adam-eps must be positive");
  need(warmup_ratio >= 0 && warmup_ratio <= 1, "--warmup-ratio must be in [0, 1]");
  need(warmup_steps >= 0, "--warmup-steps must not be negative");
  need(max_grad_norm >= 0, "--max-grad-norm must not be negative");
  need(capacity_factor >= 0 && std::isfinite(capacity_factor), "--capacity-factor must be 0 (dropless) or positive");
  need(router_jitter >= 0 && router_jitter < 1, "--router-jitter must be in [0, 1)");
  need(precision == "fp32" || precision == "bf16", "--precision must be fp32 or bf16, got " + precision);
  need(max_seq_len == 0 || max_seq_len >= 3, "--max-seq-len must be at least 3 (or 0 for the model's limit)");
  need(eval_every >= 0 && save_every >= 0 && log_every > 0, "--eval-every/--save-every must be >= 0, --log-every > 0");
  static const char* const kMetrics[] = {"accuracy",  "macro_f1",         "micro_f1",      "pearson",
                                         "spearman",  "mse",              "entity_f1",     "entity_precision",
                                         "entity_recall", "token_accuracy"};
  need(metric.empty() || std::find(std::begin(kMetrics), std::end(kMetrics), metric) != std::end(kMetrics),
       "--metric must be accuracy, macro_f1, micro_f1, pearson, spearman, mse, entity_f1, entity_precision, "
       "entity_recall or token_accuracy, got " + metric);
  if (!problem_type.empty()) try {
      parse_task(problem_type);
    } catch (const std::exception&) {
      fail("", "--problem-type must be single_label_classification, regression, multi_label_classification or "
               "token_classification, got " + problem_type);
    }
  need(eval_batch_size > 0, "--eval-batch-size must be positive");
  need(!out.empty(), "--out is required");
  file_exists(train, "--train");
  file_exists(dev, "--dev");
}

}  // namespace moekit::distill
