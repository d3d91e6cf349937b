// moekit inspect: architecture, parameter counts per part, dtypes, file size.
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"

namespace moekit::cli {

namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
};

int64_t count(const ParamList& params) { return static_cast<int64_t>(count_values(params)); }

void run_inspect(const InspectOptions& o) {
  io::LoadedModel loaded = load_model_verbose(o.model);
  BertModel& m = *loaded.model;
  const BertConfig& c = m.config;
  ParamList emb, att, ffn, head;
  m.embeddings.collect(emb);
  for (auto& layer : m.layers) {
    layer.attention.collect(att);
    layer.ffn.collect(ffn);
  }
  m.pooler.collect(head);
  m.classifier.collect(head);
  const int64_t total = count(m.params());
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
      {"parameters", {{"total", total}, {"embeddings", count(emb)}, {"attention", count(att)}, {"ffn", count(ffn)},
                      {"pooler_classifier", count(head)}}},
      {"ffn_per_token_flops", 4 * c.hidden_size * c.intermediate_size * c.num_hidden_layers},
      {"weights_file_bytes", loaded.weights_bytes},
      {"stored_dtypes", loaded.dtype_counts},
      {"vocab", loaded.vocab ? static_cast<int64_t>(loaded.vocab->size()) : 0},
      {"do_lower_case", loaded.do_lower_case},
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
  row("parameters", std::to_string(total));
  row("  embeddings", std::to_string(count(emb)));
  row("  attention", std::to_string(count(att)));
  row("  ffn", std::to_string(count(ffn)));
  row("  pooler+classifier", std::to_string(count(head)));
  std::string dtypes;
  for (const auto& [k, v] : loaded.dtype_counts) dtypes += (dtypes.empty() ? "" : ", ") + k + " x" + std::to_string(v);
  row("stored dtypes", dtypes);
  row("weights file", std::to_string(loaded.weights_bytes) + " bytes");
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
