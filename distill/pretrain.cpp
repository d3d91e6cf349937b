#include "distill/pretrain.h"

#include "io/batching.h"
#include "model/error.h"
#include "model/loss.h"

namespace moekit::distill {

void PretrainOptions::validate() const {
  TrainOptions t = train;
  t.metric = "accuracy";  // pretraining picks its best model by dev MLM loss
  t.validate();
  masking.validate();
}

namespace {

// The last layer's rows of the masked tokens: the only rows the head runs on.
Mat gather_rows(const Mat& hidden, const std::vector<int64_t>& rows) {
  Mat h(static_cast<Eigen::Index>(rows.size()), hidden.cols());
  for (size_t i = 0; i < rows.size(); ++i) h.row(static_cast<Eigen::Index>(i)) = hidden.row(rows[i]);
  return h;
}

void need_head(const BertModel& model) {
  if (!model.mlm) fail("", "masked-LM loss: the model has no MLM head");
}

}  // namespace

double mlm_step(BertModel& model, const Batch& batch, const MaskedTokens& masked, Rng* dropout_rng, float scale) {
  need_head(model);
  if (masked.rows.empty()) return 0;
  ForwardCache cache;
  Outputs out = model.forward(batch, &cache, dropout_rng, true);
  const Mat& last = out.hidden_states.back();
  MlmHead::Cache head_cache;
  Mat logits, dlogits;
  model.mlm->forward(gather_rows(last, masked.rows), model.embeddings.word, logits, &head_cache);
  const double loss = softmax_cross_entropy(logits, masked.targets, &dlogits);
  dlogits *= scale;
  Mat dh_rows;
  model.mlm->backward(dlogits, head_cache, model.embeddings.word, dh_rows);
  std::vector<Mat> dhidden(out.hidden_states.size());
  dhidden.back() = Mat::Zero(last.rows(), last.cols());
  for (size_t i = 0; i < masked.rows.size(); ++i) dhidden.back().row(masked.rows[i]) = dh_rows.row(static_cast<Eigen::Index>(i));
  const Mat no_task = Mat::Zero(out.logits.rows(), out.logits.cols());  // the classifier is not trained
  model.backward(batch, no_task, cache, &dhidden);
  return loss;
}

LossFn masked_lm_loss(const MaskVocab& vocab, const MaskingOptions& options) {
  return [vocab, options](BertModel& model, const Batch& clean, Rng& rng, float scale) {
    Batch batch = clean;
    Rng mask_rng(rng.next());  // a stream of its own: dropout draws do not shift the masks
    const MaskedTokens masked = mask_batch(batch, vocab, options, mask_rng);
    LossTerms t;
    t.total = mlm_step(model, batch, masked, &rng, scale);
    t.terms["mlm"] = t.total;
    return t;
  };
}

double mlm_eval_loss(const BertModel& model, const std::vector<io::EncodedExample>& examples, const MaskVocab& vocab,
                     const MaskingOptions& options, uint64_t seed, size_t batch_size) {
  need_head(model);
  double sum = 0;
  size_t predicted = 0;
  for (size_t start = 0; start < examples.size(); start += batch_size) {
    std::vector<size_t> idx;
    for (size_t i = start; i < std::min(examples.size(), start + batch_size); ++i) idx.push_back(i);
    Batch batch = io::make_batch(examples, idx, static_cast<int32_t>(model.config.pad_token_id));
    Rng rng(seed ^ (0xD1B54A32D192ED03ULL * (start + 1)));
    const MaskedTokens masked = mask_batch(batch, vocab, options, rng);
    if (masked.rows.empty()) continue;
    const Outputs out = model.forward(batch, nullptr, nullptr, true);
    Mat logits;
    model.mlm->forward(gather_rows(out.hidden_states.back(), masked.rows), model.embeddings.word, logits, nullptr);
    sum += softmax_cross_entropy(logits, masked.targets, nullptr) * static_cast<double>(masked.rows.size());
    predicted += masked.rows.size();
  }
  return predicted ? sum / static_cast<double>(predicted) : 0;
}

std::string to_task_model(BertModel& model, const std::vector<std::string>& labels, uint64_t seed, Task task) {
  if (!model.mlm) return "";
  model.mlm.reset();
  Rng rng(seed);
  model.replace_task_head(labels, rng, task);
  return "fine-tuning a pretrained model: dropped its MLM head (" + mlm_names(model.config).all +
         ") and initialised a new " + std::string(task_name(task)) + " head for " + std::to_string(labels.size()) +
         " labels with seed " + std::to_string(seed) + " (train it before trusting predictions)";
}

}  // namespace moekit::distill
