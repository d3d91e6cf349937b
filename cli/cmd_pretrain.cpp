// moekit pretrain: masked-language-model pretraining of a model on raw text (distill/pretrain.h).
#include <algorithm>
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/option_binder.h"
#include "distill/pretrain.h"
#include "io/dataset.h"
#include "model/error.h"

namespace moekit::cli {

namespace {

std::vector<io::EncodedExample> load_texts(const std::string& path, const io::LoadedModel& loaded, int max_len) {
  std::vector<io::Example> examples;
  for (std::string& t : io::read_texts(path)) {
    io::Example e;
    e.text = std::move(t);
    examples.push_back(std::move(e));
  }
  return io::encode_examples(*make_tokenizer(loaded), examples, max_len);
}

void run_pretrain(distill::PretrainOptions o) {
  o.validate();
  distill::TrainOptions& t = o.train;
  if (!t.resume.empty() && t.resume != t.out) fail(t.resume, "--resume must name the run's own --out directory");
  distill::Communicator& comm = data_parallel_world();
  io::LoadedModel loaded = load_model_verbose(t.model);
  BertModel& model = *loaded.model;
  if (!model.mlm) {
    Rng rng(t.seed);
    model.add_mlm_head(rng);
    std::fprintf(stderr, "%s has no MLM head: initialised %s with seed %llu\n", t.model.c_str(),
                 mlm_names(model.config).all.c_str(), static_cast<unsigned long long>(t.seed));
  }
  if (!loaded.vocab) fail(loaded.path / "vocab.txt", "missing: pretraining needs the model's vocabulary");
  const distill::MaskVocab vocab = distill::MaskVocab::from_vocab(*loaded.vocab);
  t.max_seq_len = resolve_max_len(model.config, t.max_seq_len, kTrainMaxLen);  // recorded for --resume
  distill::TrainData data;
  data.tokenizer_files = loaded.tokenizer_files;
  data.train = load_texts(t.train, loaded, t.max_seq_len);
  data.dev = load_texts(t.dev, loaded, t.max_seq_len);
  // The task head is not trained (BertForMaskedLM has none); the pooler (DistilBERT's
  // pre_classifier) gets no MLM gradient.
  ParamList head;
  if (!model.config.per_token_head()) model.pooler.collect(head);
  model.classifier.collect(head);
  ParamList trainable;
  for (Param* p : model.params())
    if (std::find(head.begin(), head.end(), p) == head.end()) trainable.push_back(p);
  if (comm.is_root())
    std::fprintf(stderr, "pretraining %s: %zu train / %zu dev texts, %s masking of %.0f%%\n", t.model.c_str(),
               data.train.size(), data.dev.size(), o.masking.whole_word ? "whole-word" : "token",
               100 * o.masking.rate);
  distill::DevEval dev;
  dev.metric = "mlm_loss";
  dev.lower_is_better = true;
  dev.fn = [&](const BertModel& m) -> std::map<std::string, double> {
    return {{"mlm_loss", distill::mlm_eval_loss(m, data.dev, vocab, o.masking, t.seed,
                                                static_cast<size_t>(t.eval_batch_size))}};
  };
  const auto r = distill::train(model, &*loaded.vocab, loaded.do_lower_case, data, t,
                                distill::masked_lm_loss(vocab, o.masking), trainable, dev, comm);
  std::printf("steps       %lld\nfinal loss  %.4f\nbest dev mlm loss %.4f (step %lld)\nspeed       %.0f tokens/s\nmodel       %s\n",
              static_cast<long long>(r.steps), r.final_loss, r.best_metric, static_cast<long long>(r.best_step),
              r.tokens_per_second, t.out.c_str());
}

}  // namespace

void register_pretrain(CLI::App& app) {
  auto o = std::make_shared<distill::PretrainOptions>();
  CLI::App* cmd = app.add_subcommand("pretrain", "Masked-language-model pretraining on raw text (BERT's MLM objective)");
  bind_options(cmd, *o);
  cmd->callback([o] { run_pretrain(*o); });
}

}  // namespace moekit::cli
