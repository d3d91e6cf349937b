// moekit init: a randomly initialised model (HF initializer) from a config and a vocabulary.
#include <algorithm>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/hf_config.h"
#include "model/error.h"

namespace moekit::cli {

namespace {

struct InitOptions {
  std::string config, vocab, out, labels, labels_from, problem_type;
  uint64_t seed = 0;
  bool lower_case = true;
};

void run_init(const InitOptions& o) {
  io::Vocab vocab = io::Vocab::load(o.vocab);
  std::ifstream in(o.config, std::ios::binary);
  if (!in) fail(o.config, "cannot open file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(o.config, std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) fail(o.config, "expected a JSON object");
  if (!j.contains("vocab_size")) j["vocab_size"] = vocab.size();
  if (!o.problem_type.empty()) j["problem_type"] = o.problem_type;
  Task task = Task::single_label;  // what --labels-from collects; the config's own problem_type when set
  if (auto it = j.find("problem_type"); it != j.end() && it->is_string()) try {
      task = parse_task(it->get<std::string>());
    } catch (const Error& e) {
      fail(o.config, e.what());
    }
  std::vector<std::string> labels;
  if (!o.labels_from.empty()) labels = io::collect_labels(o.labels_from, task);
  if (!o.labels_from.empty() && task == Task::question_answering) {  // SQuAD 2.0 data: null answers on
    const auto qs = io::read_dataset(o.labels_from, labels, true, task);
    j["version_2_with_negative"] =
        std::any_of(qs.begin(), qs.end(), [](const io::Example& e) { return e.answers.empty(); });
  }
  if (!o.labels.empty()) {
    labels.clear();
    std::stringstream ss(o.labels);
    for (std::string item; std::getline(ss, item, ',');) labels.push_back(item);
  }
  if (!labels.empty()) {
    j.erase("label2id");
    j["id2label"] = nlohmann::json::object();
    for (size_t i = 0; i < labels.size(); ++i) j["id2label"][std::to_string(i)] = labels[i];
    j["num_labels"] = labels.size();
    j["problem_type"] = task_name(task);  // explicit: one collected label is not regression by accident
  }
  BertConfig config = io::parse_hf_config(j, o.config);
  if (static_cast<int64_t>(vocab.size()) > config.vocab_size)
    fail(o.vocab, std::to_string(vocab.size()) + " tokens, but vocab_size is " + std::to_string(config.vocab_size));
  BertModel model(config);
  Rng rng(o.seed);
  model.init_weights(rng);
  io::save_model(o.out, model, &vocab, o.lower_case);
  std::cout << "initialised " << config.model_type << " model: " << config.num_hidden_layers << " layers, hidden "
            << config.hidden_size << ", " << count_values(model.params()) << " parameters, " << config.num_labels()
            << " labels -> " << o.out << "\n";
}

}  // namespace

void register_init(CLI::App& app) {
  auto opts = std::make_shared<InitOptions>();
  CLI::App* cmd = app.add_subcommand("init", "Create a randomly initialised model (for training from scratch)");
  cmd->add_option("--config", opts->config, "config.json with the architecture (HF fields)")->required();
  cmd->add_option("--vocab", opts->vocab, "vocab.txt (WordPiece)")->required();
  cmd->add_option("--out", opts->out, "output model directory")->required();
  cmd->add_option("--seed", opts->seed, "initialisation seed")->capture_default_str();
  cmd->add_option("--labels", opts->labels, "comma-separated label names (overrides the config)");
  cmd->add_option("--labels-from", opts->labels_from, "take the label set from a labelled dataset (TSV/JSONL)");
  cmd->add_option("--problem-type", opts->problem_type,
                  "the task head (overrides the config's problem_type): single_label_classification, regression "
                  "(one output, MSE), multi_label_classification (a sigmoid per label, BCE), token_classification "
                  "(a tag per token, NER; --labels-from reads the tags of a .jsonl or .conll file) or "
                  "question_answering (span start/end logits, SQuAD .json/.jsonl; --labels-from data with "
                  "unanswerable questions turns on SQuAD 2.0 null answers)")
      ->check(CLI::IsMember({"single_label_classification", "regression", "multi_label_classification",
                             "token_classification", "question_answering"}));
  cmd->add_flag("!--cased", opts->lower_case, "the vocabulary is cased (no lower-casing)");
  cmd->callback([opts] { run_init(*opts); });
}

}  // namespace moekit::cli
