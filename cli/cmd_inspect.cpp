// moekit inspect: architecture, parameter counts per part, dtypes, file size.
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "model/non_finite.h"

namespace moekit::cli {

namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
};

void run_inspect(const InspectOptions& o) {
  io::LoadedModel loaded = load_model_verbose(o.model);
  BertModel& m = *loaded.model;
  const BertConfig& c = m.config;
  const ParamCounts pc = count_params(m);
  const int64_t total = pc.total;
  const NonFinite bad = count_non_finite(m.params());
  if (bad.values)
    print_warning(o.model + ": " + std::to_string(bad.values) + " NaN/Inf weight values in " +
                  std::to_string(bad.params.size()) + " tensors (first: " + bad.params.front() + ")");
  // FFN multiply-adds per token: dense layers use the whole FFN, MoE layers top_k experts (+ a tied shared FFN).
  int64_t ffn_flops = 0;
  for (size_t l = 0; l < m.layers.size(); ++l)
    ffn_flops += 4 * c.hidden_size *
                 (m.layers[l].is_moe() ? c.moe->neurons_per_token() : c.intermediate_size);
  nlohmann::json moe = nullptr;
  if (c.moe)
    moe = {{"experts", c.moe->n_experts}, {"expert_size", c.moe->expert_size}, {"shared", c.moe->shared},
           {"shared_mode", c.moe->shared_mode}, {"method", c.moe->method},     {"router", c.moe->router},           {"top_k", c.moe->top_k},
           {"layers", c.moe->layers},         {"norm", c.moe->norm},               {"share_groups", c.moe->share_groups},
           {"share_attention", c.moe->share_attention}, {"layer_experts", c.moe->layer_experts}};
  nlohmann::json j = {
      {"path", o.model},
      {"model_type", c.model_type},
      {"layers", c.num_hidden_layers},
      {"hidden_size", c.hidden_size},
      {"attention_heads", c.num_attention_heads},
      {"intermediate_size", c.intermediate_size},
      {"hidden_act", activation_name(c.hidden_act)},
      {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.max_position_embeddings},
      {"labels", c.labels},
      // total: stored once each (unique); as_unshared: counting a shared block once per layer using it.
      {"parameters", {{"total", total}, {"as_unshared", total + pc.shared_uses}, {"embeddings", pc.embeddings}, {"attention", pc.attention}, {"ffn", pc.ffn},
                      {"experts", pc.experts}, {"router", pc.router}, {"pooler_classifier", pc.head}}},
      {"moe", moe},
      {"ffn_flops_per_token", ffn_flops},
      {"weights_file_bytes", loaded.weights_bytes},
      {"stored_dtypes", loaded.dtype_counts},
      {"vocab", loaded.vocab ? static_cast<int64_t>(loaded.vocab->size()) : 0},
      {"do_lower_case", loaded.do_lower_case},
      {"non_finite_weights", {{"values", bad.values}, {"tensors", bad.params}}},
  };
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  auto row = [](const std::string& k, const std::string& v) { std::cout << std::left << std::setw(22) << k << v << "\n"; };
  row("model", o.model);
  row("type", c.model_type + ", " + std::to_string(c.num_hidden_layers) + " layers, hidden " +
                  std::to_string(c.hidden_size) + ", " + std::to_string(c.num_attention_heads) + " heads, ffn " +
                  std::to_string(c.intermediate_size) + " (" + activation_name(c.hidden_act) + ")");
  row("vocabulary", std::to_string(c.vocab_size) + " ids" +
                        (loaded.vocab ? ", vocab.txt " + std::to_string(loaded.vocab->size()) + " tokens" : ", no vocab.txt") +
                        (loaded.do_lower_case ? ", lower-cased" : ", cased"));
  std::string labels;
  for (const auto& l : c.labels) labels += (labels.empty() ? "" : ", ") + l;
  row("labels", std::to_string(c.num_labels()) + ": " + labels);
  row("parameters", std::to_string(total) + (pc.shared_uses ? " unique (" + std::to_string(total + pc.shared_uses) +
                                                                   " counting shared blocks once per layer)"
                                                             : ""));
  row("  embeddings", std::to_string(pc.embeddings));
  row("  attention", std::to_string(pc.attention));
  row("  dense ffn", std::to_string(pc.ffn));
  if (c.moe) {
    row("  experts", std::to_string(pc.experts));
    row("  routers", std::to_string(pc.router));
    std::string layers;
    for (int64_t l : c.moe->layers) layers += (layers.empty() ? "" : ",") + std::to_string(l);
    row("moe", std::to_string(c.moe->n_experts) + " experts x " + std::to_string(c.moe->expert_size) + " (" +
                   std::to_string(c.moe->shared) + " shared, " + c.moe->shared_mode + "), " + c.moe->method + ", router " + c.moe->router +
                   ", top-" + std::to_string(c.moe->top_k) + ", layers " + layers +
                   (c.moe->norm == "layer" ? ", one LayerNorm per layer" : ""));
    if (!c.moe->layer_experts.empty()) {  // after export --prune
      std::string counts;
      for (int64_t n : c.moe->layer_experts) counts += (counts.empty() ? "" : ",") + std::to_string(n);
      row("experts per layer", counts + " (unused experts pruned)");
    }
    if (!c.moe->share_groups.empty()) {
      std::string groups;
      for (const auto& g : c.moe->share_groups) {
        groups += groups.empty() ? "" : " ";
        for (size_t i = 0; i < g.size(); ++i) groups += (i ? "+" : "") + std::to_string(g[i]);
      }
      row("shared (Go-Wider)", "layers " + groups + ": one MoE FFN" +
                                   (c.moe->share_attention ? " and one attention" : "") + " per group");
    }
  }
  row("  pooler+classifier", std::to_string(pc.head));
  row("ffn flops/token", std::to_string(ffn_flops));
  std::string dtypes;
  for (const auto& [k, v] : loaded.dtype_counts) dtypes += (dtypes.empty() ? "" : ", ") + k + " x" + std::to_string(v);
  row("stored dtypes", dtypes);
  row("weights file", std::to_string(loaded.weights_bytes) + " bytes");
  row("NaN/Inf weights", bad.values ? std::to_string(bad.values) + " values in " + std::to_string(bad.params.size()) +
                                          " tensors (first: " + bad.params.front() + ")"
                                    : "none");
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto opts = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand("inspect", "Show a model's architecture, parameter counts and storage");
  cmd->add_option("model", opts->model, "model directory")->required();
  cmd->add_flag("--json", opts->json, "print JSON instead of a table");
  cmd->callback([opts] { run_inspect(*opts); });
}

}  // namespace moekit::cli
