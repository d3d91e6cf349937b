// moekit predict: one JSON line per example (io/prediction.h: label, or score, or labels), in input order.
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "distill/evaluate.h"
#include "io/atomic_file.h"
#include "io/prediction.h"
#include "io/qa_dataset.h"

namespace moekit::cli {

namespace {

struct PredictOptions {
  std::string model, data, out;
  size_t batch_size = 32;
  int max_seq_len = 0;
  std::string precision;
};

void run_predict(const PredictOptions& o) {
  io::LoadedModel loaded = load_model_verbose(o.model, io::LoadFor::inference, parse_precision_option(o.precision));
  const auto examples = load_encoded(o.data, loaded, o.max_seq_len, false);
  const auto result = distill::run_inference(*loaded.model, examples, o.batch_size, "predict");
  const BertConfig& c = loaded.model->config;
  auto write = [&](std::ostream& os) {
    if (c.task == Task::question_answering) {  // one line per question: its best span over its windows
      for (const auto& a : distill::best_answers(result.token_logits, examples, distill::qa_decode_options(c))) {
        const std::string& context = a.question->context;
        os << nlohmann::json{{"id", a.question->id},
                             {"answer", a.text},
                             {"score", a.score},
                             {"start", io::code_points_before(context, a.begin)},
                             {"end", io::code_points_before(context, a.end)}}
                  .dump()
           << "\n";
      }
      return;
    }
    if (c.per_token_head()) {
      for (size_t i = 0; i < examples.size(); ++i) {
        const auto rows = result.token_logits.middleRows(result.token_offset[i], result.token_offset[i + 1] - result.token_offset[i]);
        os << io::token_prediction_json(c, examples[i].words, examples[i].word_starts, rows).dump() << "\n";
      }
      return;
    }
    for (Eigen::Index i = 0; i < result.logits.rows(); ++i) os << io::prediction_json(c, result.logits.row(i)).dump() << "\n";
  };
  if (o.out.empty()) {
    write(std::cout);
  } else {
    io::write_file_atomic(o.out, write);
    std::cerr << "wrote " << examples.size() << " predictions to " << o.out << " ("
              << static_cast<int64_t>(static_cast<double>(examples.size()) / std::max(result.seconds, 1e-9))
              << " examples/s)\n";
  }
}

}  // namespace

void register_predict(CLI::App& app) {
  auto opts = std::make_shared<PredictOptions>();
  CLI::App* cmd = app.add_subcommand("predict", "Predict labels and logits for a dataset (JSON lines)");
  cmd->add_option("--model", opts->model, "model directory")->required();
  cmd->add_option("--data", opts->data, "TSV or JSONL file (labels optional)")->required();
  cmd->add_option("--out", opts->out, "output JSONL file (default: stdout)");
  cmd->add_option("--batch-size", opts->batch_size, "examples per forward pass")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  add_precision_option(cmd, opts->precision);
  cmd->add_option("--max-seq-len", opts->max_seq_len, "truncate to this many tokens (0 = model limit, at most 512)")
      ->capture_default_str();
  cmd->callback([opts] { run_predict(*opts); });
}

}  // namespace moekit::cli
