// moekit export: a compact checkpoint (HDF5 or safetensors; fp32/fp16/bf16/int8; pruned).
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "compress/export.h"

namespace moekit::cli {

namespace {

void run_export(const compress::ExportOptions& o) {
  io::LoadedModel loaded = load_model_verbose(o.model);
  BertModel& model = *loaded.model;
  const auto summary = compress::export_model(model, loaded.vocab ? &*loaded.vocab : nullptr, loaded.do_lower_case, o);
  const double fp32_bytes = 4.0 * static_cast<double>(count_values(model.params()));
  std::printf("exported %s -> %s (%s, %s): %zu tensors, %.2f MB = %.1f%% of the fp32 weights\n", o.model.c_str(),
              o.out.c_str(), o.format.c_str(), o.dtype.c_str(), summary.tensors, static_cast<double>(summary.bytes) / 1e6,
              100.0 * static_cast<double>(summary.bytes) / fp32_bytes);
  if (o.prune) std::printf("pruned %lld provenance tensors\n", static_cast<long long>(summary.pruned_tensors));
  if (!o.data.empty() && model.config.moe) {
    const auto examples = load_encoded(o.data, loaded, o.max_seq_len, false);
    const auto usage = compress::expert_usage(model, examples, o.batch_size);
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
  }
}

}  // namespace

void register_export(CLI::App& app) {
  auto o = std::make_shared<compress::ExportOptions>();
  CLI::App* cmd = app.add_subcommand("export", "Write a compact checkpoint (HDF5/safetensors; fp32/fp16/bf16/int8)");
  cmd->add_option("--model", o->model, "model directory or exported file")->required();
  cmd->add_option("--out", o->out, "output file (.h5 or .safetensors)")->required();
  cmd->add_option("--format", o->format, "hdf5 or safetensors")->capture_default_str()->check(CLI::IsMember({"hdf5", "safetensors"}));
  cmd->add_option("--dtype", o->dtype, "fp32, fp16, bf16 or int8 (hdf5 only)")->capture_default_str()
      ->check(CLI::IsMember({"fp32", "fp16", "bf16", "int8"}));
  cmd->add_flag("--prune", o->prune, "drop what inference never uses (expert provenance tensors)");
  cmd->add_option("--data", o->data, "data to report expert usage on (tokens routed per expert)");
  cmd->add_option("--batch-size", o->batch_size, "examples per forward pass for --data")->capture_default_str();
  cmd->add_option("--max-seq-len", o->max_seq_len, "truncation for --data")->capture_default_str();
  cmd->callback([o] { run_export(*o); });
}

}  // namespace moekit::cli
