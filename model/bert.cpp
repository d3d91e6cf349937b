#include "model/bert.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <set>
#include <vector>

#include <omp.h>

#include "model/activation.h"
#include "model/dropout.h"
#include "model/error.h"
#include "model/layer_norm.h"

namespace moekit {

BertModel::BertModel(const BertConfig& c) : config(c) {
  c.validate();
  embeddings.init(c);
  if (c.embedding_dim() != c.hidden_size) {
    embeddings_project.emplace();
    embeddings_project->init(c.prefix() + "embeddings_project", c.embedding_dim(), c.hidden_size);
  }
  layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (size_t i = 0; i < layers.size(); ++i)
    layers[i].init(c.layer_prefix(static_cast<int64_t>(i)), c, static_cast<int64_t>(i));
  link_shared();
  init_head_layers();
}

void BertModel::init_head_layers() {
  const BertConfig& c = config;
  if (c.per_token_head()) {  // *ForTokenClassification / *ForQuestionAnswering: no pooler
    pooler = Linear{};
    classifier.init(c.task == Task::question_answering ? "qa_outputs" : "classifier", c.hidden_size, c.num_labels());
  } else if (c.roberta_like() || c.electra()) {
    pooler.init("classifier.dense", c.hidden_size, c.hidden_size);
    classifier.init("classifier.out_proj", c.hidden_size, c.num_labels());
  } else if (c.distilbert()) {
    pooler.init("pre_classifier", c.hidden_size, c.hidden_size);
    classifier.init("classifier", c.hidden_size, c.num_labels());
  } else {
    pooler.init(c.prefix() + "pooler.dense", c.hidden_size, c.hidden_size);
    classifier.init("classifier", c.hidden_size, c.num_labels());
  }
}

ParamList BertModel::params() {
  ParamList list;
  embeddings.collect(list);
  if (embeddings_project) embeddings_project->collect(list);
  for (auto& layer : layers) layer.collect(list);
  if (!config.per_token_head()) pooler.collect(list);
  classifier.collect(list);
  if (mlm) mlm->collect(list);
  return list;
}

std::vector<ParamList> BertModel::backward_stages() {
  std::vector<ParamList> stages(layers.size() + 2);
  if (!config.per_token_head()) pooler.collect(stages.front());
  classifier.collect(stages.front());
  if (mlm) mlm->collect(stages.front());
  for (size_t i = 0; i < layers.size(); ++i) layers[i].collect(stages[layers.size() - i]);
  embeddings.collect(stages.back());
  if (embeddings_project) embeddings_project->collect(stages.back());
  return stages;
}

std::vector<Linear*> BertModel::linears() {
  std::vector<Linear*> out;
  if (embeddings_project) out.push_back(&*embeddings_project);
  for (EncoderLayer& layer : layers) {
    Attention& a = layer.attention;
    if (!a.shared) out.insert(out.end(), {&a.query, &a.key, &a.value, &a.out});
    if (!layer.moe)
      out.insert(out.end(), {&layer.ffn.intermediate, &layer.ffn.output});
    else if (layer.moe_owner) {
      // A tied shared FFN is an FFN like the experts (not a router): it runs at the model's
      // precision, is packed for inference and takes int8 weights.
      if (layer.moe->shared_expert)
        out.insert(out.end(), {&layer.moe->shared_expert->intermediate, &layer.moe->shared_expert->output});
      for (ExpertFFN& e : layer.moe->experts) out.insert(out.end(), {&e.intermediate, &e.output});
    }
  }
  if (!config.per_token_head()) out.push_back(&pooler);
  out.push_back(&classifier);
  return out;
}

void BertModel::set_precision(Precision p) {
  for (EncoderLayer& layer : layers) {
    layer.attention.qkv_packed.reset();
    if (layer.moe) layer.moe->drop_inference_packs();
  }
  for (Linear* l : linears()) l->set_precision(p);
}

void BertModel::pack_for_inference() {
  std::set<const Linear*> fused;  // Q, K and V of blocks whose fused pack serves them
  for (EncoderLayer& layer : layers) {
    Attention& a = layer.attention;
    a.pack_qkv_for_inference();
    if (a.qkv_packed) fused.insert({&a.query, &a.key, &a.value});
  }
  for (Linear* l : linears())
    if (!fused.count(l)) l->pack_for_inference();
  for (EncoderLayer& layer : layers)  // after the experts' own packs, which tied_fused replaces
    if (layer.moe && layer.moe_owner) layer.moe->pack_for_inference();
}

std::vector<IndexParam> BertModel::index_params() {
  std::vector<IndexParam> list;
  for (auto& layer : layers)
    if (layer.moe && layer.moe_owner) layer.moe->collect_indices(list, config.intermediate_size);
  return list;
}

void BertModel::link_shared() {
  if (!config.moe) return;
  for (const auto& group : config.moe->share_groups) {
    EncoderLayer& owner = layers[static_cast<size_t>(group.front())];
    if (!owner.moe || owner.moe->expert_norm || !owner.moe_owner)
      fail("", "link_shared: layer " + std::to_string(group.front()) + " has no MoE FFN of its own with moe.norm layer");
    for (size_t i = 1; i < group.size(); ++i) {
      EncoderLayer& layer = layers[static_cast<size_t>(group[i])];
      layer.share_moe(owner.moe);
      if (config.moe->share_attention) {
        layer.attention.shared = &owner.attention;
        layer.attention.query = layer.attention.key = layer.attention.value = layer.attention.out = Linear{};
      }
    }
  }
}

void BertModel::set_moe(const MoeConfig& cfg, std::vector<MoeFFN> ffns) {
  if (!cfg.share_groups.empty())
    fail("", "set_moe: one MoE FFN per layer; sharing groups are built by moefy (compress/moefy.h)");
  BertConfig c = config;
  c.moe = cfg;
  c.validate();
  if (ffns.size() != cfg.layers.size())
    fail("", "set_moe: " + std::to_string(ffns.size()) + " MoE FFNs for " + std::to_string(cfg.layers.size()) +
                 " layers in moe.layers");
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].is_moe() && !cfg.is_moe_layer(static_cast<int64_t>(i)))
      fail("", "set_moe: layer " + std::to_string(i) + " is MoE already and cannot go back to dense");
  for (size_t i = 0; i < ffns.size(); ++i) {
    const std::string want = c.layer_prefix(cfg.layers[i]) + "moe.";
    if (ffns[i].prefix != want) fail("", "set_moe: FFN named \"" + ffns[i].prefix + "\" given for \"" + want + "\"");
    ffns[i].check(c, cfg.layers[i]);
  }
  for (size_t i = 0; i < ffns.size(); ++i) layers[static_cast<size_t>(cfg.layers[i])].set_moe(std::move(ffns[i]));
  config = c;
}

ParamCounts count_params(BertModel& m) {
  auto count = [](const auto& collect) {
    ParamList list;
    collect(list);
    return static_cast<int64_t>(count_values(list));
  };
  ParamCounts n;
  n.embeddings = count([&](ParamList& l) {
    m.embeddings.collect(l);
    if (m.embeddings_project) m.embeddings_project->collect(l);
  });
  for (auto& layer : m.layers) {
    n.attention += count([&](ParamList& l) { layer.attention.collect(l); });
    if (Attention* shared = layer.attention.shared)
      n.shared_uses += count([&](ParamList& l) {
        for (Linear* proj : {&shared->query, &shared->key, &shared->value, &shared->out}) proj->collect(l);
      });
    if (!layer.moe) {
      n.ffn += count([&](ParamList& l) { layer.ffn.collect(l); });
      continue;
    }
    int64_t experts = 0, router = 0;
    for (auto& x : layer.moe->experts) experts += count([&](ParamList& l) { x.collect(l); });
    if (layer.moe->shared_expert) experts += count([&](ParamList& l) { layer.moe->shared_expert->collect(l); });
    if (auto* gate = std::get_if<GateRouter>(&layer.moe->router)) router = gate->weight.value.size();
    if (!layer.moe->expert_norm) n.experts += count([&](ParamList& l) { layer.moe_norm.collect(l); });
    if (layer.moe_owner) {
      n.experts += experts;
      n.router += router;
    } else {
      n.shared_uses += experts + router;
    }
  }
  n.head = count([&](ParamList& l) {
    if (!m.config.per_token_head()) m.pooler.collect(l);
    m.classifier.collect(l);
    if (m.mlm) m.mlm->collect(l);
  });
  n.total = n.embeddings + n.attention + n.ffn + n.experts + n.router + n.head;
  for (const IndexParam& ip : m.index_params()) n.index_values += static_cast<int64_t>(ip.values->size());
  return n;
}

void BertModel::init_weights(Rng& rng) {
  for (Param* p : params()) {
    if (is_layer_norm_weight(p->name)) {
      p->value.setOnes();
    } else if (p->vector) {  // biases (LayerNorm weights handled above)
      p->value.setZero();
    } else {
      for (Eigen::Index i = 0; i < p->value.size(); ++i)
        p->value.data()[i] = static_cast<float>(rng.normal() * config.initializer_range);
    }
  }
  embeddings.word.value.row(config.pad_token_id).setZero();
}

void BertModel::init_head(Rng& rng) {
  for (Eigen::Index i = 0; i < classifier.weight.value.size(); ++i)
    classifier.weight.value.data()[i] = static_cast<float>(rng.normal() * config.initializer_range);
  classifier.bias.value.setZero();
}

void BertModel::replace_task_head(const std::vector<std::string>& labels, Rng& rng, std::optional<Task> task) {
  BertConfig c = config;
  c.labels = labels;
  if (task) c.task = *task;
  c.validate();
  const bool had_pooler = !config.per_token_head();
  const Linear old_pooler = pooler;
  config = c;
  init_head_layers();
  init_head(rng);
  if (c.per_token_head()) return;
  if (had_pooler) {  // a pretrained pooler (BERT's NSP-trained one) is kept, as from_pretrained does
    pooler.weight.value = old_pooler.weight.value;
    pooler.bias.value = old_pooler.bias.value;
  } else {
    for (Eigen::Index i = 0; i < pooler.weight.value.size(); ++i)
      pooler.weight.value.data()[i] = static_cast<float>(rng.normal() * config.initializer_range);
    pooler.bias.value.setZero();
  }
}

void BertModel::set_train_routing(const MoeTrainRouting& routing) {
  for (EncoderLayer& layer : layers)
    if (layer.moe) layer.moe->train_routing = routing;
}

void BertModel::add_mlm_head(Rng& rng) {
  if (mlm) return;
  mlm.emplace();
  mlm->init(config);
  mlm->init_weights(rng, config.initializer_range);
}

namespace {

// Splits sequences [0, n) into at most `parts` contiguous runs whose cost, count x the run's
// longest length, is as even as it can be (the largest as small as possible): a server's batch,
// sorted by length, then gives more of its short sequences to one thread and fewer long ones to
// another, each padded only to its own longest. Returns the runs' first sequences and n.
std::vector<int64_t> even_runs(const std::vector<int64_t>& lengths, int64_t parts) {
  const int64_t n = static_cast<int64_t>(lengths.size());
  auto runs_within = [&](int64_t limit, std::vector<int64_t>* starts) {
    int64_t count = 0, longest = 0, used = 1;
    if (starts) starts->assign(1, 0);
    for (int64_t s = 0; s < n; ++s) {
      const int64_t l = std::max(longest, lengths[static_cast<size_t>(s)]);
      if (count > 0 && (count + 1) * l > limit) {
        ++used;
        if (starts) starts->push_back(s);
        count = 0, longest = 0;
      }
      longest = std::max(longest, lengths[static_cast<size_t>(s)]);
      ++count;
    }
    return used;
  };
  int64_t lo = *std::max_element(lengths.begin(), lengths.end()), hi = n * lo;
  while (lo < hi) {  // the smallest largest cost that `parts` runs can keep to
    const int64_t mid = lo + (hi - lo) / 2;
    if (runs_within(mid, nullptr) <= parts) hi = mid;
    else lo = mid + 1;
  }
  std::vector<int64_t> starts;
  runs_within(lo, &starts);
  starts.push_back(n);
  return starts;
}

}  // namespace

// Inference of a batch of at least two sequences per thread: each thread runs its share of the
// sequences through the whole model on its own (the products inside run on that one thread), so
// a sublayer's activations stay in that core's cache and the threads meet once per forward, not
// at every product. Intel Xeon with AMX (2026-12-04), tokens/s, whole batch -> by thread: demo
// teacher 158-166k -> 186-188k, MoE 233-246k -> 281-286k; small bf16 MoE 188k -> 202-204k; base
// bf16 dense 7.3-7.5k -> 7.5-7.8k; fp32 within noise. The shares are contiguous runs of
// sequences of even padded size, each cut to its longest sequence where the padding is at the
// right (sequence heads: per-token logits keep the batch's layout). Each sequence's result is
// the same either way: nothing in inference mixes sequences, and padded keys weigh exactly 0.
Outputs BertModel::forward_by_thread(const Batch& batch, int threads) const {
  const bool cut = !config.per_token_head();
  std::vector<int64_t> lengths(static_cast<size_t>(batch.batch), batch.seq);
  if (cut)
    for (int64_t s = 0; s < batch.batch; ++s) lengths[static_cast<size_t>(s)] = right_padded_length(batch, s);
  const std::vector<int64_t> starts = even_runs(lengths, threads);
  const int runs = static_cast<int>(starts.size()) - 1;
  std::vector<Outputs> parts(static_cast<size_t>(runs));
  std::exception_ptr error;  // an exception must not leave an OpenMP region (it would abort)
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int t = 0; t < runs; ++t) {
    const int64_t first = starts[static_cast<size_t>(t)], count = starts[static_cast<size_t>(t) + 1] - first;
    const int64_t seq = *std::max_element(lengths.begin() + first, lengths.begin() + first + count);
    try {
      parts[static_cast<size_t>(t)] = forward(sequences(batch, first, count, seq), nullptr, nullptr, false);
    } catch (...) {
#pragma omp critical(moekit_forward_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  Outputs out;  // every run holds at least one sequence
  Eigen::Index rows = 0;
  for (const Outputs& p : parts) rows += p.logits.rows();
  out.logits.resize(rows, parts[0].logits.cols());
  rows = 0;
  for (const Outputs& p : parts) {
    out.logits.middleRows(rows, p.logits.rows()) = p.logits;
    rows += p.logits.rows();
    if (out.expert_tokens.empty()) {
      out.expert_tokens = p.expert_tokens;
      continue;
    }
    for (size_t l = 0; l < p.expert_tokens.size(); ++l)
      for (size_t e = 0; e < p.expert_tokens[l].size(); ++e) out.expert_tokens[l][e] += p.expert_tokens[l][e];
  }
  return out;
}

Outputs BertModel::forward(const Batch& batch, ForwardCache* cache, Rng* dropout_rng, bool keep_hidden) const {
  const int threads = omp_get_max_threads();
  if (!cache && !dropout_rng && !keep_hidden && threads > 1 && batch.batch >= 2 * threads && !omp_in_parallel())
    return forward_by_thread(batch, threads);
  Outputs out;
  Mat h;
  embeddings.forward(batch, h, cache ? &cache->embeddings : nullptr, dropout_rng);
  if (embeddings_project) {
    Mat projected;
    embeddings_project->forward(h, projected, cache ? &cache->project : nullptr);
    h = std::move(projected);
  }
  if (keep_hidden) out.hidden_states.push_back(h);
  if (cache) cache->layers.resize(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    Mat next;
    MoeStats stats;
    layers[i].forward(h, batch, next, cache ? &cache->layers[i] : nullptr, dropout_rng, &stats);
    if (layers[i].is_moe()) {
      out.expert_tokens.resize(layers.size());
      out.balance_loss += stats.balance_loss;
      out.expert_tokens[i] = std::move(stats.load);
      out.routed_slots += stats.routed_slots;
      out.dropped_slots += stats.dropped_slots;
    }
    h = std::move(next);
    if (keep_hidden) out.hidden_states.push_back(h);
  }
  if (config.per_token_head()) {
    token_head_forward(h, out.logits, cache, dropout_rng);
    return out;
  }
  const Eigen::Index hidden = h.cols();
  Mat cls(batch.batch, hidden);
  for (int64_t b = 0; b < batch.batch; ++b) cls.row(b) = h.row(b * batch.seq);
  const bool train = dropout_rng && config.head_dropout() > 0;
  Mat cls_mask, pooled_mask;
  const bool dropout_before_dense = config.roberta_like() || config.electra();  // not DistilBERT's
  if (train && dropout_before_dense) {
    cls_mask = dropout_mask(*dropout_rng, cls.rows(), cls.cols(), config.hidden_dropout_prob);
    cls.array() *= cls_mask.array();
  }
  Mat pooler_z, pooled;
  pooler.forward(cls, pooler_z, cache ? &cache->pooler : nullptr);
  if (config.electra() || config.distilbert())  // ElectraClassificationHead: gelu; DistilBERT: ReLU; else tanh
    activation_forward(pooler_activation(), pooler_z, pooled);
  else
    pooled = pooler_z.array().tanh().matrix();
  Mat pooled_in = pooled;
  if (train) {
    pooled_mask = dropout_mask(*dropout_rng, pooled.rows(), pooled.cols(), config.head_dropout());
    pooled_in.array() *= pooled_mask.array();
  }
  classifier.forward(pooled_in, out.logits, cache ? &cache->classifier : nullptr);
  if (cache) {
    if (config.electra() || config.distilbert()) cache->pooler_z = std::move(pooler_z);
    cache->cls_mask = std::move(cls_mask);
    cache->pooled = std::move(pooled);
    cache->pooled_mask = std::move(pooled_mask);
  }
  return out;
}

void BertModel::token_head_forward(const Mat& h, Mat& logits, ForwardCache* cache, Rng* dropout_rng) const {
  // HF *ForTokenClassification: dropout -> classifier on every row (padding rows too; the loss
  // and the metrics skip them).
  // BertForQuestionAnswering (and RoBERTa's, ELECTRA's) has no dropout before qa_outputs;
  // DistilBertForQuestionAnswering has one (qa_dropout, 0.1 by default: the model's dropout here).
  const bool head_dropout = config.task != Task::question_answering || config.distilbert();
  Mat mask;
  if (dropout_rng && config.hidden_dropout_prob > 0 && head_dropout) {
    mask = dropout_mask(*dropout_rng, h.rows(), h.cols(), config.hidden_dropout_prob);
    classifier.forward((h.array() * mask.array()).matrix(), logits, cache ? &cache->classifier : nullptr);
  } else {
    classifier.forward(h, logits, cache ? &cache->classifier : nullptr);
  }
  if (cache) cache->pooled_mask = std::move(mask);
}

Mat BertModel::token_head_backward(MatRef dlogits, const ForwardCache& cache) {
  Mat dh;
  classifier.backward(dlogits, cache.classifier, &dh);
  if (cache.pooled_mask.size() > 0) dh.array() *= cache.pooled_mask.array();
  return dh;
}

Mat BertModel::sequence_head_backward(const Batch& batch, MatRef dlogits, const ForwardCache& cache) {
  Mat dpooled;
  classifier.backward(dlogits, cache.classifier, &dpooled);
  if (cache.pooled_mask.size() > 0) dpooled.array() *= cache.pooled_mask.array();
  Mat dpre;
  if (config.electra() || config.distilbert())
    activation_backward(pooler_activation(), cache.pooler_z, dpooled, dpre);
  else  // tanh' = 1 - tanh^2
    dpre = dpooled.cwiseProduct((1.0f - cache.pooled.array().square()).matrix());
  Mat dcls;
  pooler.backward(dpre, cache.pooler, &dcls);
  if (cache.cls_mask.size() > 0) dcls.array() *= cache.cls_mask.array();
  Mat dh = Mat::Zero(batch.n_tok(), dcls.cols());
  for (int64_t b = 0; b < batch.batch; ++b) dh.row(b * batch.seq) = dcls.row(b);
  return dh;
}

void BertModel::backward(const Batch& batch, MatRef dlogits, const ForwardCache& cache,
                         const std::vector<Mat>* dhidden, std::vector<DenseFFN::Taps>* ffn_taps,
                         const std::vector<Mat>* dscores) {
  Mat dh = config.per_token_head() ? token_head_backward(dlogits, cache) : sequence_head_backward(batch, dlogits, cache);
  if (backward_hook) backward_hook(0);
  auto add_hidden = [&](size_t idx) {
    if (dhidden && idx < dhidden->size() && (*dhidden)[idx].size() > 0) dh += (*dhidden)[idx];
  };
  if (ffn_taps) ffn_taps->resize(layers.size());
  for (size_t i = layers.size(); i-- > 0;) {
    add_hidden(i + 1);
    Mat dx;
    const Mat* ds = dscores && i < dscores->size() && (*dscores)[i].size() > 0 ? &(*dscores)[i] : nullptr;
    layers[i].backward(dh, batch, cache.layers[i], dx, ffn_taps ? &(*ffn_taps)[i] : nullptr, cache.balance_weight, ds);
    dh = std::move(dx);
    if (backward_hook) backward_hook(layers.size() - i);
  }
  add_hidden(0);
  if (embeddings_project) {
    Mat dx;
    embeddings_project->backward(dh, cache.project, &dx);
    dh = std::move(dx);
  }
  embeddings.backward(batch, dh, cache.embeddings);
  if (backward_hook) backward_hook(layers.size() + 1);
}

}  // namespace moekit
