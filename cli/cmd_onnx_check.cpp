// moekit onnx-check: runs an exported ONNX graph in ONNX Runtime (Node.js + npm onnxruntime-node,
// an independent implementation) on a dataset and holds its logits to moekit's own forward pass:
// the largest logit difference, label agreement, and both engines' tokens/s on the same batches.
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "compress/onnx_runtime_probe.h"
#include "distill/evaluate.h"
#include "io/prediction.h"
#include "model/error.h"
#include "ort_logits_js.h"
#include "recipes/subprocess.h"

namespace moekit::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct OnnxCheckOptions {
  std::string model, onnx, data;
  size_t batch_size = 32;
  int max_seq_len = 0;
  double tolerance = 1e-4;
  double min_agreement = 0.99;
  bool skip_if_missing = false;
  bool json_out = false;
};

// A private scratch directory, removed with everything in it when the check ends.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "moekit-onnx-check-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) fail(fs::temp_directory_path(), "onnx-check cannot create a temporary directory here");
    path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Discards what run_process copies to its log (stderr is echoed to ours anyway).
struct NullBuffer : std::streambuf {
  int overflow(int c) override { return c; }
};

std::string fmt_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string label_text(const BertConfig& c, const Eigen::Ref<const RowVec>& logits) {
  const json p = io::prediction_json(c, logits);
  return p.contains("labels") ? p["labels"].dump() : p.value("label", "");
}

void run_onnx_check(const OnnxCheckOptions& o) {
  if (const std::string missing = compress::onnx_runtime_missing(); !missing.empty()) {
    if (!o.skip_if_missing) fail("", "onnx-check: " + missing);
    std::cerr << "moekit: warning: onnx-check skipped: " << missing << "\n";
    if (o.json_out) std::cout << json{{"skipped", missing}}.dump(2) << "\n";
    return;
  }
  if (!fs::is_regular_file(o.onnx)) fail(o.onnx, "no such ONNX file");
  io::LoadedModel loaded = load_model_verbose(o.model, io::LoadFor::inference);
  const BertConfig& config = loaded.model->config;
  const auto examples = load_encoded(o.data, loaded, o.max_seq_len, false);
  if (examples.empty()) fail(o.data, "no examples to check");
  const auto ours = distill::run_inference(*loaded.model, examples, o.batch_size, "onnx-check (moekit)");

  // ONNX Runtime gets the same length-grouped padded batches moekit runs, so tokens/s compare.
  const auto groups = io::length_grouped_batches(examples, o.batch_size);
  json in = json::array();
  for (const auto& g : groups) {
    const Batch b = io::make_batch(examples, g, static_cast<int32_t>(config.pad_token_id));
    in.push_back({{"batch", b.batch},
                  {"seq", b.seq},
                  {"input_ids", b.ids},
                  {"attention_mask", std::vector<int>(b.mask.begin(), b.mask.end())},
                  {"token_type_ids", b.type_ids}});
  }
  ScratchDir scratch;
  std::ofstream(scratch.path / "batches.json") << in.dump();
  std::ofstream(scratch.path / "ort_logits.js") << kOrtLogitsJs;
  const int threads = omp_get_max_threads();
  const std::vector<std::string> argv{"env",
                                      "NODE_PATH=" + compress::onnx_runtime_npm_dir() + "/node_modules",
                                      "MOEKIT_ORT_THREADS=" + std::to_string(threads),
                                      "node",
                                      (scratch.path / "ort_logits.js").string(),
                                      fs::absolute(o.onnx).string(),
                                      (scratch.path / "batches.json").string()};
  std::cerr << "onnx-check: running " << o.onnx << " in ONNX Runtime (" << groups.size() << " batches, " << threads
            << " thread(s))\n";
  NullBuffer null_buffer;
  std::ostream null_log(&null_buffer);
  const recipes::ProcessResult r = recipes::run_process("env", argv, {}, true, null_log);
  if (r.exit_code != 0)
    fail(o.onnx, "ONNX Runtime failed on it (exit " + std::to_string(r.exit_code) + ")" +
                     (r.last_error.empty() ? "" : ": " + escape_for_terminal(r.last_error)));
  json out;
  try {
    out = json::parse(r.stdout_text);
  } catch (const json::exception&) {
    fail(o.onnx, "ONNX Runtime printed no JSON for it");
  }
  if (!out.is_array() || out.size() != groups.size())
    fail(o.onnx, "ONNX Runtime returned " + std::to_string(out.size()) + " batches for " +
                     std::to_string(groups.size()));

  const bool per_token = config.per_token_head();  // logits [batch, seq, labels]: every real token is compared
  const int64_t labels = config.num_labels();
  double max_diff = 0, ort_seconds = 0;
  size_t agree = 0, compared = 0, ours_right = 0, ort_right = 0, gold = 0;
  auto compare = [&](const RowVec& theirs, const Eigen::Ref<const RowVec>& mine) {
    max_diff = std::max(max_diff, static_cast<double>((theirs - mine).cwiseAbs().maxCoeff()));
    if (!std::isfinite(theirs.sum())) max_diff = INFINITY;
    agree += label_text(config, theirs) == label_text(config, mine);
    ++compared;
  };
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& row = out[g];
    const size_t seq = static_cast<size_t>(in[g]["seq"].get<int64_t>());
    const size_t expected = groups[g].size() * (per_token ? seq : 1) * static_cast<size_t>(labels);
    if (!row.contains("logits") || !row["logits"].is_array() || row["logits"].size() != expected)
      fail(o.onnx, "gives " + std::to_string(row.value("logits", json::array()).size()) + " logits for a batch of " +
                       std::to_string(groups[g].size()) + (per_token ? " x " + std::to_string(seq) + " tokens" : "") +
                       " with " + std::to_string(labels) + " labels: not the graph of " + o.model + "?");
    const auto flat = row["logits"].get<std::vector<float>>();
    ort_seconds += row.value("first_seconds", 0.0);
    for (size_t k = 0; k < groups[g].size(); ++k) {
      const size_t i = groups[g][k];
      if (per_token) {
        for (size_t t = 0; t < examples[i].ids.size(); ++t)
          compare(Eigen::Map<const RowVec>(flat.data() + (k * seq + t) * labels, labels),
                  ours.token_logits.row(ours.token_offset[i] + static_cast<int64_t>(t)));
        continue;
      }
      const RowVec theirs = Eigen::Map<const RowVec>(flat.data() + k * labels, labels);
      compare(theirs, ours.logits.row(i));
      if (examples[i].label >= 0) {
        ++gold;
        Eigen::Index best = 0;
        theirs.maxCoeff(&best);
        ort_right += best == examples[i].label;
        ours_right += ours.predicted[i] == examples[i].label;
      }
    }
  }
  const double n = static_cast<double>(examples.size());
  const double agreement = static_cast<double>(agree) / static_cast<double>(std::max<size_t>(compared, 1));
  const bool diff_ok = o.tolerance <= 0 || max_diff <= o.tolerance;
  const bool passed = diff_ok && agreement >= o.min_agreement;
  json result{{"onnx", o.onnx},
              {"model", o.model},
              {"examples", examples.size()},
              {"compared", per_token ? "tokens" : "examples"},
              {"max_abs_logit_diff", max_diff},
              {"tolerance", o.tolerance},
              {"label_agreement", agreement},
              {"min_agreement", o.min_agreement},
              {"threads", threads},
              {"moekit_tokens_per_second", static_cast<double>(ours.tokens) / std::max(ours.seconds, 1e-9)},
              {"ort_tokens_per_second", static_cast<double>(ours.tokens) / std::max(ort_seconds, 1e-9)},
              {"passed", passed}};
  if (gold == examples.size() && config.task == Task::single_label) {
    result["moekit_accuracy"] = static_cast<double>(ours_right) / n;
    result["ort_accuracy"] = static_cast<double>(ort_right) / n;
  }
  if (o.json_out) std::cout << result.dump(2) << "\n";
  std::fprintf(stderr,
               "onnx-check: %zu examples, max |logit difference| %.3g (tolerance %s), labels agree %.2f%% "
               "(%zu of %zu %s)\nonnx-check: tokens/s, moekit %.0f, ONNX Runtime %.0f (%d thread(s), same batches)\n",
               examples.size(), max_diff, o.tolerance > 0 ? fmt_g(o.tolerance).c_str() : "off",
               100 * agreement, agree, compared, per_token ? "tokens" : "examples", result["moekit_tokens_per_second"].get<double>(),
               result["ort_tokens_per_second"].get<double>(), threads);
  if (result.contains("ort_accuracy"))
    std::fprintf(stderr, "onnx-check: accuracy, moekit %.4f, ONNX Runtime %.4f\n",
                 result["moekit_accuracy"].get<double>(), result["ort_accuracy"].get<double>());
  if (!diff_ok)
    fail(o.onnx, "differs from " + o.model + " by " + fmt_g(max_diff) + " in a logit, over --tolerance " +
                     fmt_g(o.tolerance));
  if (agreement < o.min_agreement)
    fail(o.onnx, "agrees with " + o.model + " on " + fmt_g(100 * agreement) + "% of the labels, under --min-agreement " +
                     fmt_g(o.min_agreement));
}

}  // namespace

void register_onnx_check(CLI::App& app) {
  auto opts = std::make_shared<OnnxCheckOptions>();
  CLI::App* cmd = app.add_subcommand(
      "onnx-check", "Run an ONNX export in ONNX Runtime (Node.js) and compare its logits with moekit's");
  cmd->add_option("--model", opts->model, "the model the ONNX file was exported from (directory or file)")
      ->required();
  cmd->add_option("--onnx", opts->onnx, "the exported .onnx file")->required();
  cmd->add_option("--data", opts->data, "TSV or JSONL file (labels optional: with them, both accuracies)")
      ->required();
  cmd->add_option("--batch-size", opts->batch_size, "examples per forward pass")
      ->capture_default_str()->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--max-seq-len", opts->max_seq_len, "truncate to this many tokens (0 = model limit, at most 512)")
      ->capture_default_str();
  cmd->add_option("--tolerance", opts->tolerance,
                  "largest allowed |logit difference| (0 = unchecked, e.g. for int8 graphs)")
      ->capture_default_str()->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--min-agreement", opts->min_agreement, "smallest allowed fraction of equal labels")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--skip-if-missing", opts->skip_if_missing,
                "without Node.js or onnxruntime-node, warn and exit 0 instead of failing");
  cmd->add_flag("--json", opts->json_out, "print the result as JSON on stdout");
  cmd->callback([opts] { run_onnx_check(*opts); });
}

}  // namespace moekit::cli
