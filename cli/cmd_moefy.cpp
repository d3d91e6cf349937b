// moekit moefy: split each dense FFN into experts and add routers (dense -> MoE).
#include <algorithm>
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/option_binder.h"
#include "model/error.h"
#include "compress/moefy.h"
#include "compress/route_fit.h"
#include "io/dataset.h"
#include "io/h5_checksum.h"

namespace moekit::cli {

namespace {

std::vector<int64_t> token_counts(const io::LoadedModel& loaded, const std::string& data) {
  const auto examples = load_encoded(data, loaded, 512, false);
  std::vector<int64_t> counts(static_cast<size_t>(loaded.model->config.vocab_size), 0);
  for (const auto& e : examples)
    for (int32_t id : e.ids) ++counts[static_cast<size_t>(id)];
  return counts;
}

void run_moefy(const compress::MoefyOptions& in) {
  io::LoadedModel loaded = load_model_verbose(in.model);
  BertModel& model = *loaded.model;
  if (model.config.moe) fail(in.model, "is already an MoE model (config.json has a \"moe\" section)");
  const compress::MoefyOptions o = compress::resolve_moefy_options(in, model.config);
  std::optional<compress::Importance> imp;
  if (!o.importance.empty() && (o.method == "importance" || o.method == "upcycle")) {
    imp = compress::read_importance(o.importance);
    if (!imp->verified) print_warning(io::unverified_warning(o.importance));
  }
  std::optional<std::vector<int64_t>> counts;
  if (o.router == "hash-balance") counts = token_counts(loaded, o.data);
  const size_t before = count_values(model.params());
  const auto plans = compress::moefy(model, o, imp ? &*imp : nullptr, counts ? &*counts : nullptr);
  std::vector<compress::RouteFitLayer> fitted;
  if (!o.fit_router.empty()) {
    compress::RouteFitOptions fo;
    fo.max_examples = o.fit_examples;
    const int max_len = static_cast<int>(std::min<int64_t>(kTrainMaxLen, model.config.max_seq_len()));
    fitted = compress::fit_routers(model, load_encoded(o.fit_router, loaded, max_len, false), fo);
  }
  io::save_model(o.out, model, loaded.vocab ? &*loaded.vocab : nullptr, loaded.do_lower_case, loaded.tokenizer_files);
  const size_t after = count_values(model.params());
  const MoeConfig& mc = *model.config.moe;
  const double ffn_per_token = static_cast<double>(mc.neurons_per_token()) / static_cast<double>(model.config.intermediate_size);
  std::printf("moefied %zu of %lld layers: %d experts x %d neurons (%d shared, %s), method %s, router %s, top-%d\n"
              "parameters %zu -> %zu; FFN compute per token %.0f%% of dense\nmodel       %s\n",
              plans.size(), static_cast<long long>(model.config.num_hidden_layers), o.experts, o.expert_size, o.shared,
              mc.shared_mode.c_str(), o.method.c_str(), o.router.c_str(), o.top_k, before, after, 100 * ffn_per_token, o.out.c_str());
  for (const auto& f : fitted)
    std::printf("router fit: layer %lld, %lld %s, gate agrees with the dense activations' best expert %.1f%% -> %.1f%%\n",
                static_cast<long long>(f.layer), static_cast<long long>(f.rows), mc.sentence_gate() ? "sequences" : "tokens",
                100 * f.agreement_before, 100 * f.agreement_after);
  if (!mc.share_groups.empty())
    std::printf("shared: %zu groups, each one MoE FFN (experts sliced from its layers' FFNs)%s; LayerNorms per layer\n",
                mc.share_groups.size(),
                mc.share_attention ? (" and one attention (" + o.share_attention + " of the layers')").c_str() : "");
}

}  // namespace

void register_moefy(CLI::App& app) {
  auto o = std::make_shared<compress::MoefyOptions>();
  CLI::App* cmd = app.add_subcommand("moefy", "Split each dense FFN into experts and add routers (dense -> MoE)");
  bind_options(cmd, *o);
  cmd->callback([o] { run_moefy(*o); });
}

}  // namespace moekit::cli
