#include "distill/evaluate.h"

#include <chrono>

#include "distill/entity_metrics.h"
#include "io/progress.h"
#include "model/error.h"

namespace moekit::distill {

InferenceResult run_inference(const BertModel& model, const std::vector<io::EncodedExample>& examples,
                              size_t batch_size, const std::string& progress_label, size_t shard, size_t shards) {
  InferenceResult r;
  const bool per_token = model.config.per_token_head();
  r.logits = Mat::Zero(per_token ? 0 : static_cast<Eigen::Index>(examples.size()), model.config.num_labels());
  r.predicted.assign(per_token ? 0 : examples.size(), -1);
  if (per_token) {
    r.token_offset.assign(examples.size() + 1, 0);
    for (size_t i = 0; i < examples.size(); ++i)
      r.token_offset[i + 1] = r.token_offset[i] + static_cast<int64_t>(examples[i].ids.size());
    r.token_logits = Mat::Zero(r.token_offset.back(), model.config.num_labels());
  }
  const auto batches = io::length_grouped_batches(examples, batch_size);
  io::Progress progress(progress_label, static_cast<int64_t>(examples.size()), "examples");
  const auto start = std::chrono::steady_clock::now();
  int64_t done = 0;
  for (size_t batch = 0; batch < batches.size(); ++batch) {
    const auto& indices = batches[batch];
    if (batch % shards != shard) continue;
    Batch b = io::make_batch(examples, indices, static_cast<int32_t>(model.config.pad_token_id));
    b.labels.clear();
    b.token_labels.clear();
    Outputs out = model.forward(b, nullptr, nullptr);
    for (size_t k = 0; per_token && k < indices.size(); ++k) {
      const size_t i = indices[k];
      const auto len = static_cast<Eigen::Index>(examples[i].ids.size());
      r.token_logits.middleRows(r.token_offset[i], len) = out.logits.middleRows(static_cast<Eigen::Index>(k) * b.seq, len);
    }
    for (size_t k = 0; !per_token && k < indices.size(); ++k) {
      r.logits.row(static_cast<Eigen::Index>(indices[k])) = out.logits.row(static_cast<Eigen::Index>(k));
      Eigen::Index arg;
      out.logits.row(static_cast<Eigen::Index>(k)).maxCoeff(&arg);
      r.predicted[indices[k]] = static_cast<int>(arg);
    }
    r.tokens += b.real_tokens();
    if (r.expert_tokens.size() < out.expert_tokens.size()) r.expert_tokens.resize(out.expert_tokens.size());
    for (size_t l = 0; l < out.expert_tokens.size(); ++l) {
      auto& sum = r.expert_tokens[l];
      if (sum.size() < out.expert_tokens[l].size()) sum.resize(out.expert_tokens[l].size(), 0);
      for (size_t e = 0; e < out.expert_tokens[l].size(); ++e) sum[e] += out.expert_tokens[l][e];
    }
    done += static_cast<int64_t>(indices.size());
    if (!progress_label.empty()) progress.update(done);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!progress_label.empty()) progress.finish();
  return r;
}

ClassMetrics evaluate(const InferenceResult& result, const std::vector<io::EncodedExample>& examples, int num_labels) {
  std::vector<int> gold;
  gold.reserve(examples.size());
  for (const auto& e : examples) gold.push_back(e.label);
  return classification_metrics(result.predicted, gold, num_labels);
}

std::vector<int> word_predictions(const InferenceResult& result, const io::EncodedExample& example, size_t i) {
  std::vector<int> tags(example.word_starts.size(), -1);
  for (size_t w = 0; w < tags.size(); ++w) {
    if (example.word_starts[w] < 0) continue;
    Eigen::Index arg = 0;
    result.token_logits.row(result.token_offset[i] + example.word_starts[w]).maxCoeff(&arg);
    tags[w] = static_cast<int>(arg);
  }
  return tags;
}

namespace {

// Over the words that got a token: the others have no prediction (HF's run_ner scores only the
// labelled first sub-tokens too).
std::map<std::string, double> token_metrics(const InferenceResult& result,
                                            const std::vector<io::EncodedExample>& examples,
                                            const std::vector<std::string>& labels) {
  std::vector<std::vector<std::string>> predicted(examples.size()), gold(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    const std::vector<int> tags = word_predictions(result, examples[i], i);
    for (size_t w = 0; w < tags.size(); ++w) {
      if (tags[w] < 0) continue;
      predicted[i].push_back(labels.at(static_cast<size_t>(tags[w])));
      gold[i].push_back(labels.at(static_cast<size_t>(examples[i].word_tags[w])));
    }
  }
  const EntityMetrics m = entity_metrics(predicted, gold);
  return {{"entity_f1", m.f1},
          {"entity_precision", m.precision},
          {"entity_recall", m.recall},
          {"token_accuracy", m.token_accuracy}};
}

}  // namespace

std::map<std::string, double> task_metrics(Task task, const InferenceResult& result,
                                           const std::vector<io::EncodedExample>& examples,
                                           const std::vector<std::string>& labels, const QaDecodeOptions& qa) {
  if (task == Task::question_answering) {
    for (const auto& e : examples)
      if (!e.qa || !e.qa->labelled) fail("", "metrics need every question labelled (its \"answers\")");
    return qa_metrics(result.token_logits, examples, qa);
  }
  const Eigen::Index cols = result.logits.cols();
  const bool has_targets = task == Task::regression || task == Task::multi_label;
  for (const auto& e : examples)
    if (!e.labelled() || (has_targets && static_cast<Eigen::Index>(e.targets.size()) != cols) ||
        (task == Task::token_classification && e.word_tags.size() != e.words.size()))
      fail("", "metrics need every example labelled for the model's task");
  switch (task) {
    case Task::token_classification: return token_metrics(result, examples, labels);
    case Task::question_answering: break;  // above
    case Task::single_label: {
      const ClassMetrics c = evaluate(result, examples, static_cast<int>(cols));
      return {{"accuracy", c.accuracy}, {"macro_f1", c.macro_f1}};
    }
    case Task::regression: {
      std::vector<double> predicted, gold;
      for (size_t i = 0; i < examples.size(); ++i) {
        predicted.push_back(result.logits(static_cast<Eigen::Index>(i), 0));
        gold.push_back(examples[i].targets[0]);
      }
      const RegressionMetrics r = regression_metrics(predicted, gold);
      return {{"pearson", r.pearson}, {"spearman", r.spearman}, {"mse", r.mse}};
    }
    case Task::multi_label: {
      std::vector<uint8_t> predicted, gold;
      for (size_t i = 0; i < examples.size(); ++i)
        for (Eigen::Index c = 0; c < cols; ++c) {
          predicted.push_back(result.logits(static_cast<Eigen::Index>(i), c) > 0);  // sigmoid > 0.5
          gold.push_back(examples[i].targets[static_cast<size_t>(c)] > 0.5f);
        }
      const MultiLabelMetrics m = multilabel_metrics(predicted, gold, static_cast<int>(cols));
      return {{"micro_f1", m.micro_f1}, {"macro_f1", m.macro_f1}, {"accuracy", m.subset_accuracy}};
    }
  }
  fail("", "unknown task");
}

std::string default_metric(Task task) {
  switch (task) {
    case Task::single_label: return "accuracy";
    case Task::regression: return "pearson";
    case Task::multi_label: return "micro_f1";
    case Task::token_classification: return "entity_f1";
    case Task::question_answering: return "f1";
  }
  return "accuracy";
}

bool lower_is_better(const std::string& metric) { return metric == "mse"; }

}  // namespace moekit::distill
