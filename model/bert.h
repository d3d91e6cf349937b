// BertForSequenceClassification (and RoBERTa's equivalent), exactly as Hugging Face computes it:
// embeddings -> post-LN blocks -> pooler tanh(dense(CLS)) -> classifier.
// RoBERTa's head (classifier.dense -> tanh -> classifier.out_proj) is the same maths under
// other names, plus a dropout before the dense layer in training. ELECTRA's discriminator:
// embeddings (optionally narrower, then electra.embeddings_project to hidden_size) -> BERT blocks
// -> classifier.dense -> GELU -> classifier.out_proj on [CLS], dropouts as RoBERTa's.
// DistilBertForSequenceClassification: word + position embeddings (no token types) -> BERT blocks
// under DistilBERT's names -> pre_classifier -> ReLU -> dropout(seq_classif_dropout) -> classifier
// on [CLS].
#pragma once
#include <functional>
#include <optional>
#include <vector>

#include "model/batch.h"
#include "model/config.h"
#include "model/embeddings.h"
#include "model/encoder_layer.h"
#include "model/mlm_head.h"

namespace moekit {

struct ForwardCache {
  // MoE training: backward adds balance_weight * d(Outputs::balance_loss), i.e. it differentiates
  // L_task + balance_weight * balance_loss. Set by the trainer; 0 (the default) adds nothing.
  float balance_weight = 0;
  Embeddings::Cache embeddings;
  Linear::Cache project;  // ELECTRA's embeddings_project
  std::vector<EncoderLayer::Cache> layers;
  Mat cls;                // [batch, hidden] CLS rows of the last layer
  Mat cls_mask;           // RoBERTa dropout before the pooler dense (empty otherwise)
  Linear::Cache pooler;
  Mat pooler_z;           // pooler dense output before its activation (ELECTRA's GELU, DistilBERT's ReLU)
  Mat pooled;             // tanh (GELU for ELECTRA, ReLU for DistilBERT) output [batch, hidden]
  Mat pooled_mask;        // dropout mask before the classifier (empty in eval); [n_tok, hidden] for a per-token head
  Linear::Cache classifier;
};

struct Outputs {
  Mat logits;                      // [batch, num_labels]; [batch * seq, num_labels] for a per-token head
  std::vector<Mat> hidden_states;  // [layers + 1] of [n_tok, hidden]: embeddings, each layer
  // MoE models only (per call, so concurrent forwards do not share counters):
  double balance_loss = 0;  // sum over MoE layers of N * sum_i f_i P_i (gate routers; MoEBERT's gate_loss)
  // [layers][n_experts] real tokens routed to each expert ({} for dense layers); a top-k token
  // counts once in each of its k experts.
  std::vector<std::vector<int64_t>> expert_tokens;
  // Training with a capacity (MoeTrainRouting): real slots routed, and those over capacity.
  int64_t routed_slots = 0, dropped_slots = 0;
};

// Data-parallel training's hook into backward(): called with stage s as soon as the grads of
// backward_stages()[s] are final for this backward, so their allreduce can start while the
// earlier layers still run (distill/grad_sync.h). Nothing may change those grads afterwards.
using BackwardHook = std::function<void(size_t stage)>;

struct BertModel {
  BertConfig config;  // config.moe: the MoE layout (absent = dense)
  Embeddings embeddings;
  // electra.embeddings_project (embedding_size -> hidden_size), only when they differ.
  std::optional<Linear> embeddings_project;
  std::vector<EncoderLayer> layers;
  // bert.pooler.dense | classifier.dense (RoBERTa, ELECTRA) | pre_classifier (DistilBERT); unused
  // by a per-token head
  Linear pooler;
  Linear classifier;  // classifier | classifier.out_proj (RoBERTa, ELECTRA); classifier for a per-token head
  // Masked-LM head (cls.predictions.*), present while pretraining or when a checkpoint has one;
  // forward() does not run it (distill/pretrain.h does, on the masked rows).
  std::optional<MlmHead> mlm;

  explicit BertModel(const BertConfig& config);
  BertModel(const BertModel&) = delete;  // params() hands out pointers into the model
  BertModel& operator=(const BertModel&) = delete;

  // HF _init_weights: weights N(0, initializer_range), padding row of word embeddings zero,
  // LayerNorm 1/0, biases 0.
  void init_weights(Rng& rng);
  void init_head(Rng& rng);  // only pooler-independent classifier (a new head for a new task)
  // A new classifier for `labels` (config.labels replaced; config.task too when `task` is given),
  // initialised from rng: fine-tuning a pretrained encoder on a task, as transformers'
  // from_pretrained does for a missing head. The pooler is kept (a new one is made when the old
  // head had none); a per-token head drops it.
  void replace_task_head(const std::vector<std::string>& labels, Rng& rng, std::optional<Task> task = std::nullopt);
  // Adds an untrained MLM head (HF init from rng) when there is none.
  void add_mlm_head(Rng& rng);

  // dropout_rng == nullptr: eval mode. cache == nullptr: inference (no activation memory).
  Outputs forward(const Batch& batch, ForwardCache* cache, Rng* dropout_rng, bool keep_hidden = false) const;

  // Accumulates every parameter's grad from dL/dlogits and, optionally, dL/dhidden_states
  // (same layout as Outputs::hidden_states; empty matrices are skipped). ffn_taps, when given,
  // receives each layer's FFN neuron gradients (size = layers).
  // dscores, when given, holds per layer an extra gradient on its attention scores ([batch*heads*seq,
  // seq] like the cached probabilities; empty matrices are skipped).
  void backward(const Batch& batch, MatRef dlogits, const ForwardCache& cache,
                const std::vector<Mat>* dhidden = nullptr, std::vector<DenseFFN::Taps>* ffn_taps = nullptr,
                const std::vector<Mat>* dscores = nullptr);

  ParamList params();
  // params() grouped by when backward() finishes their grads, in that order: 0 the heads (pooler,
  // classifier, MLM head: the MLM loss runs its head before backward), 1 + k the layer
  // layers - 1 - k (a Go-Wider group's shared block sits in its first layer, the last one the
  // backward reaches), then the embeddings (and ELECTRA's projection).
  std::vector<ParamList> backward_stages();
  // Empty (the default): backward() calls nothing. Set by the trainer around one backward.
  BackwardHook backward_hook;

  // Every Linear layer once (shared blocks in their owner layer), in params() order: where
  // inference attaches int8 weights.
  std::vector<Linear*> linears();
  // Runs every float Linear's products at `p` (forward and backward; LayerNorm, softmax and
  // residual sums stay fp32, gate routers stay fp32). Drops inference packs.
  void set_precision(Precision p);
  // Packs every float Linear for inference at its precision (io::LoadFor::inference does this):
  // only for models that will not be trained afterwards.
  void pack_for_inference();
  // Hash tables and neuron_index of the MoE layers (saved as I32), in layer order.
  std::vector<IndexParam> index_params();

  // Turns the layers cfg.layers into MoE layers: ffns[i] (e.g. MoeFFN::from_dense of
  // layers[cfg.layers[i]].ffn) goes to layer cfg.layers[i]; then config.moe = cfg. Checks every
  // FFN against cfg and the names against the layer first, so on error the model is unchanged.
  // Training-only routing (capacity, router jitter) of every MoE layer; not saved.
  void set_train_routing(const MoeTrainRouting& routing);
  void set_moe(const MoeConfig& cfg, std::vector<MoeFFN> ffns);

  // Go-Wider sharing from config.moe.share_groups: every later layer of a group runs the first
  // layer's MoE FFN (keeping its own LayerNorm) and, with share_attention, its attention
  // projections (its own ones are released). The constructor calls it; moefy calls it after
  // building the owners' blocks. Throws Error when an owner has no layer-norm MoE FFN.
  void link_shared();

 private:
  void init_head_layers();  // names and shapes of pooler + classifier for config's task
  // The activation after the pooler when it is not tanh: ELECTRA's GELU, DistilBERT's ReLU.
  Activation pooler_activation() const { return config.distilbert() ? Activation::relu : Activation::gelu; }
  void token_head_forward(const Mat& h, Mat& logits, ForwardCache* cache, Rng* dropout_rng) const;
  // Inference with the batch's sequences split between `threads` threads (see bert.cpp).
  Outputs forward_by_thread(const Batch& batch, int threads) const;
  Mat token_head_backward(MatRef dlogits, const ForwardCache& cache);  // -> dL/dh [n_tok, hidden]
  Mat sequence_head_backward(const Batch& batch, MatRef dlogits, const ForwardCache& cache);
};

// Parameter counts by part, for inspect and reports. experts: every expert's W1, b1, W2, b2 and
// LayerNorm; router: gate weights; ffn: dense FFNs; head: pooler + classifier.
struct ParamCounts {
  int64_t embeddings = 0, attention = 0, ffn = 0, experts = 0, router = 0, head = 0;
  int64_t total = 0;          // sum of the above (= count_values(model.params())): stored once each
  // Go-Wider sharing: parameters counted again for every further layer that runs a shared block,
  // so total + shared_uses is what the layers compute with (the unshared equivalent).
  int64_t shared_uses = 0;
  int64_t index_values = 0;   // I32 hash-table and neuron_index entries (not parameters)
};
ParamCounts count_params(BertModel& model);

}  // namespace moekit
