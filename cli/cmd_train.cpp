// moekit train: fine-tune every parameter of a model (dense or MoE) on labelled data.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/option_binder.h"
#include "model/error.h"
#include "distill/pretrain.h"
#include "distill/trainer.h"
#include "io/dataset.h"

namespace moekit::cli {

namespace {

void run_train(distill::TrainOptions o) {
  o.validate();
  if (!o.resume.empty() && o.resume != o.out)
    fail(o.resume, "--resume must name the run's own --out directory (" + o.out + ")");
  distill::Communicator& comm = data_parallel_world();
  io::LoadedModel loaded = io::load_model(o.model, o.seed);
  for (const auto& w : loaded.warnings) print_warning(w);
  // A pretrained encoder (an MLM head, or no trained classifier and a --problem-type): the task's
  // head and labels come from --problem-type and the training data.
  if (loaded.model->mlm || (loaded.fresh_head && !o.problem_type.empty())) {
    const Task task = o.problem_type.empty() ? Task::single_label : parse_task(o.problem_type);
    const std::vector<std::string> labels = io::collect_labels(o.train, task);
    std::string note = distill::to_task_model(*loaded.model, labels, o.seed, task);
    if (note.empty()) {
      Rng rng(o.seed);
      loaded.model->replace_task_head(labels, rng, task);
      note = std::string("no trained head: initialised a new ") + task_name(task) + " head for " +
             std::to_string(labels.size()) + " labels with seed " + std::to_string(o.seed);
    }
    print_warning(o.model + ": " + note);
    if (task == Task::question_answering) {  // SQuAD 2.0 data: null answers on, as run_qa's flag
      const auto questions = io::read_dataset(o.train, loaded.model->config.labels, true, task);
      loaded.model->config.qa_null_answers =
          std::any_of(questions.begin(), questions.end(), [](const io::Example& e) { return e.answers.empty(); });
    }
  } else if (!o.problem_type.empty() && parse_task(o.problem_type) != loaded.model->config.task) {
    fail(o.model, std::string("the model has a ") + task_name(loaded.model->config.task) +
                      " head; --problem-type " + o.problem_type + " applies only to a pretrained (masked-LM) encoder");
  }
  o.max_seq_len = resolve_max_len(loaded.model->config, o.max_seq_len, kTrainMaxLen);  // recorded for --resume
  distill::TrainData data;
  data.train = load_encoded(o.train, loaded, o.max_seq_len, true);
  data.dev = load_encoded(o.dev, loaded, o.max_seq_len, true);
  data.tokenizer_files = loaded.tokenizer_files;
  if (comm.is_root())
    std::fprintf(stderr, "training %s: %s train / %s dev (%d rank(s))\n", o.model.c_str(),
                 io::describe_count(data.train).c_str(), io::describe_count(data.dev).c_str(), comm.size());
  const auto r = distill::train(*loaded.model, loaded.vocab ? &*loaded.vocab : nullptr, loaded.do_lower_case, data, o,
                                distill::task_loss_fn(), {}, {}, comm);
  std::printf("steps       %lld\nfinal loss  %.4f\nbest dev %s %.4f (step %lld)\nspeed       %.0f tokens/s\nmodel       %s\n",
              static_cast<long long>(r.steps), r.final_loss, r.metric.c_str(), r.best_metric,
              static_cast<long long>(r.best_step), r.tokens_per_second, o.out.c_str());
}

}  // namespace

void register_train(CLI::App& app) {
  auto opts = std::make_shared<distill::TrainOptions>();
  CLI::App* cmd = app.add_subcommand("train", "Fine-tune a model (dense or MoE) on labelled data");
  bind_options(cmd, *opts);
  cmd->callback([opts] { run_train(*opts); });
}

}  // namespace moekit::cli
