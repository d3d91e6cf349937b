#include "io/config_fit.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "model/error.h"

namespace moekit::io {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

const Tensor* find_suffix(const std::map<std::string, Tensor>& tensors, const std::string& tail) {
  for (const auto& [name, t] : tensors)
    if (ends_with(name, tail)) return &t;
  return nullptr;
}

// Highest N in names "...encoder.layer.N...." (DistilBERT: "...transformer.layer.N...."), or -1.
int64_t highest_layer(const std::map<std::string, Tensor>& tensors) {
  int64_t top = -1;
  const std::string key = "layer.";
  for (const auto& [name, t] : tensors) {
    const size_t at = name.find(key);
    if (at == std::string::npos) continue;
    char* end = nullptr;
    const long long n = std::strtoll(name.c_str() + at + key.size(), &end, 10);
    if (end && *end == '.' && n >= 0) top = std::max<int64_t>(top, n);
  }
  return top;
}

// A lower bound on the parameters a model of `c` holds (computed in double: no overflow), so
// the check never refuses a file that binds.
double min_parameters(const BertConfig& c) {
  const double h = double(c.hidden_size);
  double n = (double(c.vocab_size) + double(c.max_position_embeddings) + double(c.type_vocab_size)) *
             double(c.embedding_dim());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const bool moe = c.moe && c.moe->is_moe_layer(l);
    const bool owns_attention = !(moe && c.moe->share_attention) || c.moe->share_owner(l) == l;
    if (owns_attention) n += 4 * h * h;
    if (!moe) n += 2 * h * double(c.intermediate_size);
    n += 2 * h;  // the attention LayerNorm, kept by every layer
  }
  return n;
}

}  // namespace

void check_config_fits_weights(const BertConfig& c, const std::map<std::string, Tensor>& tensors,
                               const fs::path& config_path, const fs::path& weights_path) {
  const std::string file = weights_path.filename().string();
  // config.json's own key names (DistilBERT's dim, n_layers, ... for a DistilBERT config)
  auto field = [&](const char* name, int64_t value) {
    return std::string(config_key(c, name)) + " = " + std::to_string(value);
  };
  auto check_table = [&](const char* tail, const char* rows_field, int64_t rows) {
    const Tensor* t = find_suffix(tensors, tail);
    if (!t || t->shape.size() != 2) return;  // absent or odd: bind reports it with the rest
    const std::string held = ", but " + file + " stores " + tail + " as " + shape_string(t->shape);
    check(t->shape[0] == rows, config_path, field(rows_field, rows) + held);
    const bool narrow = c.embedding_dim() != c.hidden_size;  // ELECTRA's embedding_size
    check(t->shape[1] == c.embedding_dim(), config_path,
          field(narrow ? "embedding_size" : "hidden_size", c.embedding_dim()) + held);
  };
  check_table("embeddings.word_embeddings.weight", "vocab_size", c.vocab_size);
  check_table("embeddings.position_embeddings.weight", "max_position_embeddings", c.max_position_embeddings);
  const int64_t layers = highest_layer(tensors) + 1;
  check(c.num_hidden_layers <= layers, config_path,
        field("num_hidden_layers", c.num_hidden_layers) + ", but " + file + " holds tensors of " +
            std::to_string(layers) + " layers");
  double held = 0;
  for (const auto& [name, t] : tensors) held += double(checked_numel(t.shape).value_or(0));
  const double need = min_parameters(c);
  if (need > held) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "the config needs at least %.3g parameters, but %s holds %.3g (%s, %s, %s)", need,
                  file.c_str(), held, field("hidden_size", c.hidden_size).c_str(),
                  field("intermediate_size", c.intermediate_size).c_str(),
                  field("num_hidden_layers", c.num_hidden_layers).c_str());
    fail(config_path, buf);
  }
}

}  // namespace moekit::io
