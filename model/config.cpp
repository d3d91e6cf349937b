#include "model/config.h"

#include "model/error.h"

namespace moekit {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::gelu: return "gelu";
    case Activation::gelu_new: return "gelu_new";
    case Activation::relu: return "relu";
  }
  return "?";
}

Activation parse_activation(const std::string& name) {
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::gelu_new;
  if (name == "relu") return Activation::relu;
  fail("", "hidden_act: unsupported activation \"" + name + "\" (expected gelu, gelu_new or relu)");
}

static void positive(int64_t v, const char* name) {
  if (v <= 0) fail("", std::string(name) + ": expected a positive integer, got " + std::to_string(v));
}

void BertConfig::validate() const {
  if (model_type != "bert" && model_type != "roberta")
    fail("", "model_type: unsupported \"" + model_type + "\" (expected bert or roberta)");
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(intermediate_size, "intermediate_size");
  positive(max_position_embeddings, "max_position_embeddings");
  positive(type_vocab_size, "type_vocab_size");
  if (hidden_size % num_attention_heads != 0)
    fail("", "hidden_size " + std::to_string(hidden_size) + " is not a multiple of num_attention_heads " +
                 std::to_string(num_attention_heads));
  if (!(layer_norm_eps > 0)) fail("", "layer_norm_eps: expected a positive number");
  if (!(hidden_dropout_prob >= 0 && hidden_dropout_prob < 1))
    fail("", "hidden_dropout_prob: expected a value in [0, 1)");
  if (!(attention_probs_dropout_prob >= 0 && attention_probs_dropout_prob < 1))
    fail("", "attention_probs_dropout_prob: expected a value in [0, 1)");
  if (pad_token_id < 0 || pad_token_id >= vocab_size)
    fail("", "pad_token_id " + std::to_string(pad_token_id) + " is outside the vocabulary");
  if (max_seq_len() < 2) fail("", "max_position_embeddings is too small for model_type " + model_type);
  if (labels.empty()) fail("", "the model has no labels (num_labels must be at least 1)");
}

}  // namespace moekit
