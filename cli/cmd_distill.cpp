// moekit distill: train a student (usually MoE) from a dense teacher, layer by layer.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/option_binder.h"
#include "distill/distill_loss.h"
#include "model/error.h"

namespace moekit::cli {

namespace {

void run_distill(distill::DistillOptions o) {
  o.validate();
  const auto& t = o.train;
  if (!t.resume.empty() && t.resume != t.out) fail(t.resume, "--resume must name the run's own --out directory");
  distill::Communicator& comm = data_parallel_world();
  // Forward only; under --precision bf16 the teacher's products run bf16 too.
  io::LoadedModel teacher = load_model_verbose(
      o.teacher, io::LoadFor::inference, t.precision == "bf16" ? std::optional(Precision::bf16) : std::nullopt);
  io::LoadedModel student = io::load_model(t.model, t.seed);
  for (const auto& w : student.warnings) print_warning(w);
  const BertConfig& tc = teacher.model->config;
  const BertConfig& sc = student.model->config;
  if (tc.hidden_size != sc.hidden_size)
    fail(t.model, "hidden size " + std::to_string(sc.hidden_size) + " differs from the teacher's " +
                      std::to_string(tc.hidden_size) + " (hidden-state distillation needs them equal)");
  if (tc.labels != sc.labels) fail(t.model, "label set differs from the teacher's (" + o.teacher + ")");
  if (tc.vocab_size != sc.vocab_size || tc.model_type != sc.model_type)
    fail(t.model, "vocabulary or model type differs from the teacher's: both must read the same token ids");
  const auto pairs = distill::hidden_pairs(o.layer_map, static_cast<int>(sc.num_hidden_layers),
                                           static_cast<int>(tc.num_hidden_layers));
  const ParamList trainable = distill::select_groups(student.model->params(), o.train_only);
  o.train.max_seq_len = resolve_max_len(sc, t.max_seq_len, kTrainMaxLen);  // recorded for --resume
  distill::TrainData data;
  data.train = load_encoded(t.train, student, t.max_seq_len, true);
  data.dev = load_encoded(t.dev, student, t.max_seq_len, true);
  data.tokenizer_files = student.tokenizer_files;
  if (comm.is_root())
    std::fprintf(stderr, "distilling %s -> %s: %s train / %s dev, %zu of %zu tensors trained\n",
               o.teacher.c_str(), t.model.c_str(), io::describe_count(data.train).c_str(),
               io::describe_count(data.dev).c_str(), trainable.size(),
               student.model->params().size());
  if (comm.size() > 1 && comm.is_root()) std::fprintf(stderr, "data-parallel over %d ranks\n", comm.size());
  const auto r = distill::train(*student.model, student.vocab ? &*student.vocab : nullptr, student.do_lower_case, data,
                                t, distill::distillation_loss(*teacher.model, o, pairs), trainable, {}, comm);
  std::printf("steps       %lld\nfinal loss  %.4f\nbest dev %s %.4f (step %lld)\nspeed       %.0f tokens/s\nmodel       %s\n",
              static_cast<long long>(r.steps), r.final_loss, r.metric.c_str(), r.best_metric,
              static_cast<long long>(r.best_step), r.tokens_per_second, t.out.c_str());
}

}  // namespace

void register_distill(CLI::App& app) {
  auto o = std::make_shared<distill::DistillOptions>();
  CLI::App* cmd = app.add_subcommand("distill", "Train a student from a dense teacher with layer-wise distillation");
  bind_options(cmd, *o);
  cmd->callback([o] { run_distill(*o); });
}

}  // namespace moekit::cli
