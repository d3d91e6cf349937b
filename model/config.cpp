#include "model/config.h"

#include "model/error.h"

namespace moekit {

const LayerNames kBertLayerNames{"attention.self.query", "attention.self.key",        "attention.self.value",
                                 "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                                 "output.dense",           "output.LayerNorm"};
const LayerNames kDistilBertLayerNames{"attention.q_lin", "attention.k_lin", "attention.v_lin",
                                       "attention.out_lin", "sa_layer_norm", "ffn.lin1",
                                       "ffn.lin2",          "output_layer_norm"};

std::string BertConfig::layer_prefix(int64_t layer) const {
  return prefix() + (distilbert() ? "transformer.layer." : "encoder.layer.") + std::to_string(layer) + ".";
}

const char* config_key(const BertConfig& c, const char* bert_key) {
  if (!c.distilbert()) return bert_key;
  static const char* const kMap[][2] = {{"hidden_size", "dim"},
                                        {"num_hidden_layers", "n_layers"},
                                        {"num_attention_heads", "n_heads"},
                                        {"intermediate_size", "hidden_dim"},
                                        {"hidden_act", "activation"},
                                        {"hidden_dropout_prob", "dropout"},
                                        {"attention_probs_dropout_prob", "attention_dropout"}};
  for (const auto& m : kMap)
    if (std::string(bert_key) == m[0]) return m[1];
  return bert_key;
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::gelu: return "gelu";
    case Activation::gelu_new: return "gelu_new";
    case Activation::relu: return "relu";
  }
  return "?";
}

Activation parse_activation(const std::string& name, const char* key) {
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::gelu_new;
  if (name == "relu") return Activation::relu;
  fail("", std::string(key) + ": unsupported activation \"" + name + "\" (expected gelu, gelu_new or relu)");
}

const char* task_name(Task t) {
  switch (t) {
    case Task::single_label: return "single_label_classification";
    case Task::regression: return "regression";
    case Task::multi_label: return "multi_label_classification";
    case Task::token_classification: return "token_classification";
    case Task::question_answering: return "question_answering";
  }
  return "?";
}

Task parse_task(const std::string& name) {
  if (name == "single_label_classification") return Task::single_label;
  if (name == "regression") return Task::regression;
  if (name == "multi_label_classification") return Task::multi_label;
  if (name == "token_classification") return Task::token_classification;
  if (name == "question_answering") return Task::question_answering;
  fail("", "problem_type: unknown \"" + name +
               "\" (expected single_label_classification, regression, multi_label_classification or "
               "token_classification or question_answering)");
}

static void positive(int64_t v, const char* name) {
  if (v <= 0) fail("", std::string(name) + ": expected a positive integer, got " + std::to_string(v));
}

static void probability(float p, const char* name) {
  if (!(p >= 0 && p < 1)) fail("", std::string(name) + ": expected a value in [0, 1)");
}

void BertConfig::validate() const {
  if (model_type != "bert" && !roberta_like() && !electra() && !distilbert())
    fail("", "model_type: unsupported \"" + model_type +
                 "\" (expected bert, roberta, xlm-roberta, electra or distilbert)");
  if (embedding_size < 0 || (embedding_size > 0 && embedding_size != hidden_size && !electra()))
    fail("", "embedding_size: only an ELECTRA model may have an embedding width other than hidden_size");
  auto key = [&](const char* bert_key) { return config_key(*this, bert_key); };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, key("hidden_size"));
  positive(num_hidden_layers, key("num_hidden_layers"));
  positive(num_attention_heads, key("num_attention_heads"));
  positive(intermediate_size, key("intermediate_size"));
  positive(max_position_embeddings, "max_position_embeddings");
  if (distilbert() && type_vocab_size != 0)
    fail("", "type_vocab_size: DistilBERT has no token type embeddings (expected 0, got " +
                 std::to_string(type_vocab_size) + ")");
  if (!distilbert()) positive(type_vocab_size, "type_vocab_size");
  if (hidden_size % num_attention_heads != 0)
    fail("", std::string(key("hidden_size")) + " " + std::to_string(hidden_size) + " is not a multiple of " +
                 key("num_attention_heads") + " " + std::to_string(num_attention_heads));
  if (!(layer_norm_eps > 0)) fail("", "layer_norm_eps: expected a positive number");
  probability(hidden_dropout_prob, key("hidden_dropout_prob"));
  probability(attention_probs_dropout_prob, key("attention_probs_dropout_prob"));
  probability(seq_classif_dropout, "seq_classif_dropout");
  if (pad_token_id < 0 || pad_token_id >= vocab_size)
    fail("", "pad_token_id " + std::to_string(pad_token_id) + " is outside the vocabulary");
  if (max_seq_len() < 2) fail("", "max_position_embeddings is too small for model_type " + model_type);
  if (labels.empty()) fail("", "the model has no labels (num_labels must be at least 1)");
  if (task == Task::regression && labels.size() != 1)
    fail("", "problem_type regression: expected num_labels 1, got " + std::to_string(labels.size()));
  if (task == Task::question_answering && labels.size() != 2)
    fail("", "question answering: expected num_labels 2 (span start and end logits), got " +
                 std::to_string(labels.size()));
  if (moe) moe->validate(num_hidden_layers);
}

bool MoeConfig::is_moe_layer(int64_t layer) const {
  for (int64_t l : layers)
    if (l == layer) return true;
  return false;
}

int64_t MoeConfig::share_owner(int64_t layer) const {
  for (const auto& group : share_groups)
    for (int64_t l : group)
      if (l == layer) return group.front();
  return layer;
}

int64_t MoeConfig::experts_at(int64_t layer) const {
  if (layer_experts.empty()) return n_experts;
  for (size_t i = 0; i < layers.size() && i < layer_experts.size(); ++i)
    if (layers[i] == layer) return layer_experts[i];
  return n_experts;
}

void MoeConfig::validate(int64_t num_hidden_layers) const {
  positive(n_experts, "moe.experts");
  positive(expert_size, "moe.expert_size");
  if (shared < 0 || shared > expert_size)
    fail("", "moe.shared: expected 0..expert_size (" + std::to_string(expert_size) + "), got " + std::to_string(shared));
  if (method != "importance" && method != "cluster" && method != "random" && method != "upcycle" && method != "manual")
    fail("", "moe.method: unknown \"" + method + "\" (expected importance, cluster, random, upcycle or manual)");
  if (router != "hash" && router != "hash-balance" && router != "gate" && router != "gate-sentence")
    fail("", "moe.router: unknown \"" + router + "\" (expected hash, hash-balance, gate or gate-sentence)");
  if (shared_mode != "copy" && shared_mode != "tied")
    fail("", "moe.shared_mode: unknown \"" + shared_mode + "\" (expected copy or tied)");
  if (tied() && shared >= expert_size)
    fail("", "moe.shared: a tied shared FFN of " + std::to_string(shared) + " neurons leaves no routed neurons in experts of " +
                 std::to_string(expert_size));
  if (tied() && !share_groups.empty()) fail("", "moe.shared_mode: tied is not supported with moe.share_groups");
  if (top_k < 1 || top_k > n_experts)
    fail("", "moe.top_k: expected 1..experts (" + std::to_string(n_experts) + "), got " + std::to_string(top_k));
  if (!gated() && top_k != 1) fail("", "moe.top_k: a hash router sends each token to one expert (top_k 1)");
  if (sentence_gate() && top_k != 1) fail("", "moe.top_k: the sentence gate sends each sequence to one expert (top_k 1)");
  if (layers.empty()) fail("", "moe.layers: expected at least one layer index");
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] < 0 || layers[i] >= num_hidden_layers)
      fail("", "moe.layers: layer " + std::to_string(layers[i]) + " does not exist (the model has " +
                   std::to_string(num_hidden_layers) + ")");
    if (i > 0 && layers[i] <= layers[i - 1]) fail("", "moe.layers: expected increasing indices, each once");
  }
  if (norm != "expert" && norm != "layer") fail("", "moe.norm: unknown \"" + norm + "\" (expected expert or layer)");
  std::vector<bool> grouped(static_cast<size_t>(num_hidden_layers), false);
  for (const auto& group : share_groups) {
    if (group.size() < 2) fail("", "moe.share_groups: a group needs at least two layers");
    for (size_t i = 0; i < group.size(); ++i) {
      const int64_t l = group[i];
      if (!is_moe_layer(l)) fail("", "moe.share_groups: layer " + std::to_string(l) + " is not in moe.layers");
      if (grouped[static_cast<size_t>(l)]) fail("", "moe.share_groups: layer " + std::to_string(l) + " is in two groups");
      if (i > 0 && l <= group[i - 1]) fail("", "moe.share_groups: expected increasing layer indices in each group");
      grouped[static_cast<size_t>(l)] = true;
    }
  }
  if (!share_groups.empty() && norm != "layer")
    fail("", "moe.share_groups: shared MoE FFNs need moe.norm \"layer\" (each layer keeps its own LayerNorm)");
  if (share_attention && share_groups.empty()) fail("", "moe.share_attention: needs moe.share_groups");
  if (!layer_experts.empty()) {
    if (layer_experts.size() != layers.size())
      fail("", "moe.layer_experts: " + std::to_string(layer_experts.size()) + " counts for " +
                   std::to_string(layers.size()) + " MoE layers");
    for (int64_t n : layer_experts)
      if (n < top_k || n > n_experts)
        fail("", "moe.layer_experts: " + std::to_string(n) + " is outside top_k.." + std::to_string(n_experts));
    for (const auto& group : share_groups)
      for (int64_t l : group)
        if (experts_at(l) != experts_at(group.front()))
          fail("", "moe.layer_experts: layers " + std::to_string(group.front()) + " and " + std::to_string(l) +
                       " share one MoE FFN but list different expert counts");
  }
}

}  // namespace moekit
