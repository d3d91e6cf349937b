// moekit export: a compact checkpoint (HDF5 or safetensors; fp32/fp16/bf16/int8; pruned).
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "compress/expert_merge.h"
#include "compress/export.h"
#include "compress/prune.h"
#include "distill/evaluate.h"
#include "io/tokenizer.h"
#include "model/error.h"

namespace moekit::cli {

namespace {

// The predicted label of each example, or of each token for a per-token head (what a prune or
// merge may change).
std::vector<int> predicted_labels(const distill::InferenceResult& r) {
  if (r.token_logits.rows() == 0) return r.predicted;
  std::vector<int> out(static_cast<size_t>(r.token_logits.rows()));
  for (Eigen::Index t = 0; t < r.token_logits.rows(); ++t) {
    Eigen::Index arg = 0;
    r.token_logits.row(t).maxCoeff(&arg);
    out[static_cast<size_t>(t)] = static_cast<int>(arg);
  }
  return out;
}

// Prints each MoE layer's expert load on the data; with --prune removes the experts no token
// selects and reports how many predictions on the data changed.
void usage_and_prune(BertModel& model, const io::LoadedModel& loaded, const compress::ExportOptions& o) {
  const auto examples = load_encoded(o.data, loaded, o.max_seq_len, false);
  const distill::InferenceResult before = distill::run_inference(model, examples, o.batch_size);
  const std::vector<int> before_labels = predicted_labels(before);
  const char* unit = model.config.per_token_head() ? "tokens" : "examples";
  const auto& usage = before.expert_tokens;
  for (size_t l = 0; l < usage.size(); ++l) {
    if (usage[l].empty()) continue;
    int unused = 0;
    int64_t total = 0;
    for (int64_t n : usage[l]) {
      unused += n == 0;
      total += n;
    }
    std::printf("layer %zu: %zu experts, %d never selected on %s, load", l, usage[l].size(), unused, o.data.c_str());
    for (int64_t n : usage[l]) std::printf(" %.2f", total ? static_cast<double>(n) / static_cast<double>(total) : 0.0);
    std::printf("\n");
  }
  if (o.merge_experts > 0 || o.prune_experts > 0) {
    const compress::ExpertCalibration cal = compress::calibrate_experts(model, examples, o.batch_size);
    for (const auto& c : cal.layers) {
      if (c.layer < 0) continue;
      std::printf("layer %lld: REAP score (mean gate x |expert output| over its tokens)", static_cast<long long>(c.layer));
      for (double v : c.reap) std::printf(" %.3g", v);
      std::printf("\n");
    }
    const int64_t removed = o.merge_experts > 0 ? compress::merge_experts_to(model, cal, o.merge_experts)
                                                : compress::prune_experts_to(model, cal, o.prune_experts, o.criterion);
    const auto after = predicted_labels(distill::run_inference(model, examples, o.batch_size));
    size_t same = 0;
    for (size_t i = 0; i < after.size(); ++i) same += before_labels[i] == after[i];
    std::printf("%s to %lld experts per layer: %lld parameters removed; predictions on %s unchanged for %zu of %zu %s\n",
                o.merge_experts > 0 ? "merged (MC-SMoE)" : ("pruned by " + o.criterion).c_str(),
                static_cast<long long>(o.merge_experts > 0 ? o.merge_experts : o.prune_experts),
                static_cast<long long>(removed), o.data.c_str(), same, after.size(), unit);
  }
  if (!o.prune) return;
  const compress::PrunedExperts pruned = compress::prune_unused_experts(model, usage);
  if (pruned.layers.empty()) {
    std::printf("pruned no expert: every expert is selected on %s\n", o.data.c_str());
    return;
  }
  for (const auto& p : pruned.layers) {
    std::printf("layer %lld: removed expert(s)", static_cast<long long>(p.layer));
    for (int64_t e : p.removed) std::printf(" %lld", static_cast<long long>(e));
    std::printf(", %lld left\n", static_cast<long long>(model.layers[static_cast<size_t>(p.layer)].moe->n_experts()));
  }
  const auto after = predicted_labels(distill::run_inference(model, examples, o.batch_size));
  size_t same = 0;
  for (size_t i = 0; i < after.size(); ++i) same += before_labels[i] == after[i];
  std::printf("pruned %lld parameters; predictions on %s unchanged for %zu of %zu %s\n",
              static_cast<long long>(pruned.parameters), o.data.c_str(), same, after.size(), unit);
}

void run_export(const compress::ExportOptions& o) {
  io::LoadedModel loaded = load_model_verbose(o.model);
  BertModel& model = *loaded.model;
  if ((o.merge_experts > 0 || o.prune_experts > 0) && (o.data.empty() || !model.config.moe))
    fail(o.model, std::string(o.merge_experts > 0 ? "--merge-experts" : "--prune-experts") +
                      " needs an MoE model and --data (calibration examples)");
  if (o.merge_experts > 0 && o.prune_experts > 0) fail("", "--merge-experts and --prune-experts exclude each other");
  if (o.external_data && o.format != "onnx") fail(o.out, "--external-data is for --format onnx");
  if (!o.data.empty() && model.config.moe) usage_and_prune(model, loaded, o);
  const auto summary = compress::export_model(model, loaded.vocab ? &*loaded.vocab : nullptr, loaded.do_lower_case, o,
                                              io::tokenizer_file_contents(loaded));
  const double fp32_bytes = 4.0 * static_cast<double>(count_values(model.params()));
  std::printf("exported %s -> %s (%s, %s): %zu tensors, %.2f MB = %.1f%% of the fp32 weights\n", o.model.c_str(),
              o.out.c_str(), o.format.c_str(), o.dtype.c_str(), summary.tensors, static_cast<double>(summary.bytes) / 1e6,
              100.0 * static_cast<double>(summary.bytes) / fp32_bytes);
  if (o.prune) std::printf("pruned %lld provenance tensors\n", static_cast<long long>(summary.pruned_tensors));
}

}  // namespace

void register_export(CLI::App& app) {
  auto o = std::make_shared<compress::ExportOptions>();
  CLI::App* cmd = app.add_subcommand("export", "Write a compact checkpoint (HDF5/safetensors; fp32/fp16/bf16/int8)");
  cmd->add_option("--model", o->model, "model directory or exported file")->required();
  cmd->add_option("--out", o->out, "output file (.h5, .safetensors or .onnx)")->required();
  cmd->add_option("--format", o->format, "hdf5, safetensors or onnx")->capture_default_str()
      ->check(CLI::IsMember({"hdf5", "safetensors", "onnx"}));
  cmd->add_option("--dtype", o->dtype, "fp32, fp16, bf16 or int8 (int8: hdf5 or onnx; onnx: fp32 or int8)")->capture_default_str()
      ->check(CLI::IsMember({"fp32", "fp16", "bf16", "int8"}));
  cmd->add_flag("--prune", o->prune,
                "drop what inference never uses: expert provenance tensors, and with --data the experts no token selects");
  cmd->add_flag("--external-data", o->external_data,
                "onnx: the weights in OUT.data next to OUT (ONNX external data; automatic above 2 GB)");
  cmd->add_option("--data", o->data, "data to report expert usage on (tokens routed per expert) and to prune by");
  cmd->add_option("--merge-experts", o->merge_experts,
                  "with --data: merge each MoE layer down to K experts (MC-SMoE: the K most used dominate, the others "
                  "join the most similar by router logits, neurons permutation-aligned, usage-weighted average)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--prune-experts", o->prune_experts, "with --data: keep the K best experts per MoE layer by --criterion")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--criterion", o->criterion,
                  "expert score for --prune-experts: reap (mean gate x expert-output norm over its tokens) or usage (tokens routed)")
      ->capture_default_str()->check(CLI::IsMember({"usage", "reap"}));
  cmd->add_option("--batch-size", o->batch_size, "examples per forward pass for --data")->capture_default_str();
  cmd->add_option("--max-seq-len", o->max_seq_len, "truncation for --data (0 = model limit, at most 512)")->capture_default_str();
  cmd->callback([o] { run_export(*o); });
}

}  // namespace moekit::cli
