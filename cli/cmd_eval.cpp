// moekit eval: the task's metrics (accuracy and macro-F1, Pearson/Spearman, micro/macro-F1) and
// throughput on labelled data.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "distill/evaluate.h"

namespace moekit::cli {

namespace {

struct EvalOptions {
  std::string model, data;
  size_t batch_size = 32;
  int max_seq_len = 0;
  std::string precision;
  bool json = false;
};

void run_eval(const EvalOptions& o) {
  io::LoadedModel loaded = load_model_verbose(o.model, io::LoadFor::inference, parse_precision_option(o.precision));
  const auto examples = load_encoded(o.data, loaded, o.max_seq_len, true);
  const auto result = distill::run_inference(*loaded.model, examples, o.batch_size, "eval");
  const BertConfig& config = loaded.model->config;
  const auto metrics =
      distill::task_metrics(config.task, result, examples, config.labels, distill::qa_decode_options(config));
  const double secs = std::max(result.seconds, 1e-9);
  // QA: examples are windows (features) of the questions; count the questions.
  const size_t count = config.task == Task::question_answering && !examples.empty()
                           ? static_cast<size_t>(examples.back().qa_example + 1)
                           : examples.size();
  const double n = static_cast<double>(count);
  nlohmann::json j = {{"model", o.model}, {"data", o.data}, {"examples", count}};
  for (const auto& [name, value] : metrics) j[name] = value;
  j["examples_per_second"] = n / secs;
  j["tokens_per_second"] = static_cast<double>(result.tokens) / secs;
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("model       %s\ndata        %s (%zu examples)\n", o.model.c_str(), o.data.c_str(), count);
  for (const auto& [name, value] : metrics) {
    std::string shown = name;  // macro_f1 -> macro-F1
    if (auto at = shown.find("_f1"); at != std::string::npos) shown.replace(at, 3, "-F1");
    std::printf("%-11s %.4f\n", shown.c_str(), value);
  }
  std::printf("speed       %.1f examples/s, %.0f tokens/s\n", n / secs, static_cast<double>(result.tokens) / secs);
}

}  // namespace

void register_eval(CLI::App& app) {
  auto opts = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "The task's metrics (accuracy, macro-F1; Pearson, Spearman; micro-F1) and speed on labelled data");
  cmd->add_option("--model", opts->model, "model directory")->required();
  cmd->add_option("--data", opts->data, "labelled TSV or JSONL file")->required();
  cmd->add_option("--batch-size", opts->batch_size, "examples per forward pass")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  add_precision_option(cmd, opts->precision);
  cmd->add_option("--max-seq-len", opts->max_seq_len, "truncate to this many tokens (0 = model limit, at most 512)")
      ->capture_default_str();
  cmd->add_flag("--json", opts->json, "print JSON instead of a table");
  cmd->callback([opts] { run_eval(*opts); });
}

}  // namespace moekit::cli
