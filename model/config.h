// Architecture of a BERT-style encoder (the Hugging Face config.json fields moekit uses).
// Parsing lives in io/hf_config; this header is only the data and its invariants.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moekit {

enum class Activation { gelu, gelu_new, relu };

// What the task head predicts (HF config.json `problem_type`): the one switch every task-specific
// piece (loss, KD term, metrics, predictions) dispatches on.
//   single_label: softmax over num_labels classes, cross-entropy ("single_label_classification")
//   regression:   one real value per example (num_labels 1), MSE ("regression")
//   multi_label:  an independent sigmoid per label, BCE with logits ("multi_label_classification")
//   token_classification: softmax over num_labels tags for every token (NER; HF's
//                 *ForTokenClassification: no pooler, dropout -> `classifier` on each token's
//                 last hidden state), cross-entropy on each word's first sub-token. HF has no
//                 problem_type for it: config.json says so by its `architectures`.
//   question_answering: extractive QA (SQuAD; HF's *ForQuestionAnswering: `qa_outputs` on every
//                 token, no dropout, no pooler), two logits per token (span start, end); loss the
//                 mean of the start and end cross-entropies over each sequence's real tokens.
//                 num_labels 2. Identified by `architectures` too.
enum class Task { single_label, regression, multi_label, token_classification, question_answering };

// The MoE layout (DESIGN.md 4.2, 4.3), config.json "moe". It lives inside BertConfig so every
// `BertModel(config)` (load, copies, students) gets the same structure; absent = a dense model.
struct MoeConfig {
  int64_t n_experts = 4;    // "experts"
  int64_t expert_size = 0;  // neurons per expert (all experts equal)
  int64_t shared = 0;       // neurons every expert shares (provenance of the split)
  std::string method = "manual";  // how the experts were made: importance | cluster | random | upcycle | manual
  // hash | hash-balance (a hash table) | gate (learned linear, per token) | gate-sentence (learned
  // linear on the mean-pooled sequence: one expert per sequence, MoEBERT's fast CPU path)
  std::string router = "hash";
  // "copy" (MoEBERT): every expert holds its own copy of the `shared` neurons. "tied" (Residual-MoE,
  // LLaMA-MoE): the `shared` neurons form one always-on shared FFN, the experts hold only their
  // expert_size - shared routed neurons, and the outputs sum.
  std::string shared_mode = "copy";
  int64_t top_k = 1;              // experts per token; 1 for hash routers
  std::vector<int64_t> layers;    // MoE layer indices, increasing; the others stay dense
  // Where the FFN's LayerNorm sits: "expert" = inside each expert, after its own residual
  // (MoEBERT); "layer" = one per layer after the mixture, LN(x + sum_e g_e E_e(x)) (Switch, WideNet).
  std::string norm = "expert";
  // Go-Wider sharing (DESIGN.md 4.4): the MoE layers of a group run one MoE FFN (experts and
  // router), owned and named by the group's first layer; every layer keeps its own LayerNorms.
  // Needs norm "layer". share_attention: the group also shares the attention projections.
  std::vector<std::vector<int64_t>> share_groups;
  bool share_attention = false;
  // Experts per MoE layer, one per entry of `layers`, when they differ (`export --prune` removes
  // experts the router never selects); empty = n_experts everywhere.
  std::vector<int64_t> layer_experts;

  bool gated() const { return router == "gate" || router == "gate-sentence"; }
  bool sentence_gate() const { return router == "gate-sentence"; }
  bool tied() const { return shared_mode == "tied"; }
  // Neurons of each routed expert: expert_size, or expert_size - shared when tied.
  int64_t routed_size() const { return tied() ? expert_size - shared : expert_size; }
  // Neurons of the always-on shared FFN (0 unless tied).
  int64_t tied_size() const { return tied() ? shared : 0; }
  // FFN neurons one token runs in an MoE layer: top_k routed experts plus the shared FFN.
  int64_t neurons_per_token() const { return top_k * routed_size() + tied_size(); }
  bool is_moe_layer(int64_t layer) const;
  // The layer whose MoE FFN (and attention, when shared) `layer` runs: its group's first layer,
  // or `layer` itself when it is in no group.
  int64_t share_owner(int64_t layer) const;
  int64_t experts_at(int64_t layer) const;
  // Throws Error naming the first bad field ("moe.top_k: ...").
  void validate(int64_t num_hidden_layers) const;
};

// The tensor names of one encoder layer's parts, after its prefix ("bert.encoder.layer.N.").
struct LayerNames {
  const char *query, *key, *value, *attention_out, *attention_norm;  // self-attention sub-block
  const char *ffn_in, *ffn_out, *ffn_norm;                            // FFN sub-block (W1, W2, LayerNorm)
};
// BERT's (attention.self.query, ..., intermediate.dense, output.dense, output.LayerNorm) and
// DistilBERT's (attention.q_lin, ..., sa_layer_norm, ffn.lin1, ffn.lin2, output_layer_norm).
extern const LayerNames kBertLayerNames, kDistilBertLayerNames;

struct BertConfig {
  // "bert", "roberta", "xlm-roberta" (RoBERTa's architecture and tensor names, `roberta.*`),
  // "electra" (an ELECTRA discriminator: BERT blocks under `electra.*`, no pooler, a
  // classifier.dense -> GELU -> classifier.out_proj head on [CLS]) or "distilbert" (BERT's post-LN
  // blocks under `distilbert.transformer.layer.N.` with DistilBERT's names, no token types, no
  // dropout after the attention projection, head pre_classifier -> ReLU -> dropout -> classifier).
  std::string model_type = "bert";
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  // ELECTRA's embedding width; when it differs from hidden_size, `electra.embeddings_project`
  // maps the embeddings to hidden_size. 0 = hidden_size.
  int64_t embedding_size = 0;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  Activation hidden_act = Activation::gelu;
  float hidden_dropout_prob = 0.1f;
  float attention_probs_dropout_prob = 0.1f;
  // DistilBERT's dropout before its sequence classifier (config seq_classif_dropout); the other
  // architectures use hidden_dropout_prob there.
  float seq_classif_dropout = 0.2f;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;  // 0 for DistilBERT: no token type table, token type ids ignored
  float initializer_range = 0.02f;
  float layer_norm_eps = 1e-12f;
  int64_t pad_token_id = 0;
  std::vector<std::string> labels;  // id2label in id order; size = num_labels
  Task task = Task::single_label;    // problem_type; regression has exactly one label
  std::optional<MoeConfig> moe;     // config.json "moe"; absent = dense

  int64_t num_labels() const { return static_cast<int64_t>(labels.size()); }
  // The head scores every token (logits [batch * seq, num_labels]) instead of the [CLS] row, and
  // has no pooler.
  bool per_token_head() const { return task == Task::token_classification || task == Task::question_answering; }
  // SQuAD 2.0: a question may have no answer in the context (predicted when the [CLS] span
  // outscores every span by qa_null_threshold). config.json "version_2_with_negative".
  bool qa_null_answers = false;
  float qa_null_threshold = 0;
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // RoBERTa numbers positions from padding_idx + 1 (HF create_position_ids_from_input_ids).
  int64_t position_offset() const { return roberta_like() ? pad_token_id + 1 : 0; }
  // RoBERTa's architecture: position offset, head classifier.dense -> tanh -> classifier.out_proj.
  bool roberta_like() const { return model_type == "roberta" || model_type == "xlm-roberta"; }
  int64_t embedding_dim() const { return embedding_size > 0 ? embedding_size : hidden_size; }
  bool electra() const { return model_type == "electra"; }
  bool distilbert() const { return model_type == "distilbert"; }
  // Dropout on the head's input to the classifier (after the pooler / pre_classifier).
  float head_dropout() const { return distilbert() ? seq_classif_dropout : hidden_dropout_prob; }
  // Longest sequence the position table allows.
  int64_t max_seq_len() const { return max_position_embeddings - position_offset(); }
  // Prefix of encoder tensor names: "bert." or "roberta." (XLM-R's too, as transformers names them).
  std::string prefix() const { return roberta_like() ? "roberta." : model_type + "."; }
  // Prefix of layer `layer`'s tensor names: "bert.encoder.layer.N." ("distilbert.transformer.layer.N.").
  std::string layer_prefix(int64_t layer) const;
  const LayerNames& layer_names() const { return distilbert() ? kDistilBertLayerNames : kBertLayerNames; }

  // Throws Error (without a path; callers add it) naming the first bad field.
  void validate() const;
};

// The config.json key of a BertConfig field named by its BERT key: DistilBERT's own for a
// DistilBERT config ("hidden_size" -> "dim", "num_hidden_layers" -> "n_layers", ...), so messages
// name what the user's file holds. Other keys come back unchanged.
const char* config_key(const BertConfig& config, const char* bert_key);

const char* activation_name(Activation a);
// HF problem_type names: single_label_classification, regression, multi_label_classification.
const char* task_name(Task t);
// Throws Error for an unknown name.
Task parse_task(const std::string& name);
// Throws Error for an unknown name; the message names `key` (the config.json key read).
Activation parse_activation(const std::string& name, const char* key = "hidden_act");

}  // namespace moekit
