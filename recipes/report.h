// The run's results, read back from what the steps wrote: the model table (eval/bench JSON,
// `inspect` parameter counts), key metrics per step, and the self-contained report.html
// (inline SVG: training curves, expert load per layer, importance histograms).
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "recipes/plan.h"

namespace moekit::recipes {

struct ModelRow {
  std::string name, path;
  double accuracy = -1, macro_f1 = -1;  // -1 = not evaluated
  // The other task heads' eval metrics (pearson, spearman, mse; micro_f1), for summary.json and
  // the step table.
  std::map<std::string, double> task_metrics;
  double bench_tokens_per_second = -1;  // `bench`: synthetic full-length batches
  double eval_tokens_per_second = -1;   // `eval`: on the test data (includes tokenising)
  uint64_t file_bytes = 0;
  int64_t parameters = -1;
};

// One row per model named by the plan's eval/bench steps, in order of first appearance.
std::vector<ModelRow> model_rows(const Plan& plan);

// The model table as fixed-width text (the runner prints it at the end).
std::string format_rows(const std::vector<ModelRow>& rows);

// metrics.jsonl lines (torn lines skipped).
std::vector<nlohmann::json> read_metrics(const fs::path& path);

// Key numbers of a finished step for summary.json (best dev accuracy, eval accuracy, tokens/s...).
nlohmann::json step_metrics(const PlannedStep& step);

// Writes report.html for `step` (a report step of `plan`); `summary` gives each step's status.
void write_report(const Plan& plan, const PlannedStep& step, const nlohmann::json& summary);

}  // namespace moekit::recipes
