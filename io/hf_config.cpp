#include "io/hf_config.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "model/error.h"

namespace moekit::io {

using nlohmann::json;

namespace {

struct Reader {
  const json& j;
  const std::filesystem::path& path;
  std::string scope;  // "moe." inside the moe object, for messages

  int64_t integer(const char* key, int64_t fallback, bool required = false) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) fail(path, "missing required key \"" + scope + key + "\"");
      return fallback;
    }
    if (!it->is_number_integer())
      fail(path, scope + key + ": expected an integer, got " + it->dump());
    return it->get<int64_t>();
  }
  float number(const char* key, float fallback) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number()) fail(path, scope + key + ": expected a number, got " + it->dump());
    return it->get<float>();
  }
  std::string text(const char* key, const std::string& fallback) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_string()) fail(path, scope + key + ": expected a string, got " + it->dump());
    return it->get<std::string>();
  }
  bool boolean(const char* key, bool fallback) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(path, scope + key + ": expected true or false, got " + it->dump());
    return it->get<bool>();
  }
  Activation activation(const char* key) const {
    try {
      return parse_activation(text(key, "gelu"), key);
    } catch (const Error& e) {
      fail(path, e.what());
    }
  }
};

// Sane maxima for the sizes that decide allocations: a config beyond them is corrupt or hostile,
// and is refused before anything is built (the largest published BERT-family models are far
// below: 48 layers, hidden 8192, vocab 250k, 8k positions).
struct Limit {
  const char* key;
  int64_t max;
};
constexpr Limit kLimits[] = {{"vocab_size", 4'000'000},         {"hidden_size", 32768},
                             {"embedding_size", 32768},         {"num_hidden_layers", 1024},       {"num_attention_heads", 1024},
                             {"intermediate_size", 262144},     {"max_position_embeddings", 131072},
                             {"type_vocab_size", 1024},         {"experts", 1024},
                             {"expert_size", 262144},           {"dim", 32768},
                             {"n_layers", 1024},                {"n_heads", 1024},
                             {"hidden_dim", 262144}};

int64_t bounded(const Reader& r, const char* key, int64_t fallback, bool required = false) {
  const int64_t v = r.integer(key, fallback, required);
  for (const Limit& l : kLimits)
    if (std::string(key) == l.key && v > l.max)
      fail(r.path, r.scope + key + " = " + std::to_string(v) + " is larger than moekit allows (" +
                       std::to_string(l.max) + "); corrupt config?");
  return v;
}

// id2label {"0": "neg", ...} wins; then label2id; then num_labels with HF's LABEL_i names.
std::vector<std::string> read_labels(const json& j, const std::filesystem::path& path) {
  auto from_map = [&](const json& m, bool id_to_label) {
    std::vector<std::string> labels(m.size());
    std::vector<bool> seen(m.size(), false);
    for (auto it = m.begin(); it != m.end(); ++it) {
      std::string id_text = id_to_label ? it.key() : "";
      int64_t id = -1;
      std::string name;
      if (id_to_label) {
        if (!it->is_string()) fail(path, "id2label: values must be strings");
        name = it->get<std::string>();
        try {
          size_t used = 0;
          id = std::stoll(id_text, &used);
          if (used != id_text.size()) id = -1;
        } catch (const std::exception&) {
          id = -1;
        }
      } else {
        if (!it->is_number_integer()) fail(path, "label2id: values must be integers");
        id = it->get<int64_t>();
        name = it.key();
      }
      if (id < 0 || id >= static_cast<int64_t>(labels.size()) || seen[static_cast<size_t>(id)])
        fail(path, std::string(id_to_label ? "id2label" : "label2id") +
                       ": ids must be 0..num_labels-1, each once (bad entry for \"" + it.key() + "\")");
      seen[static_cast<size_t>(id)] = true;
      labels[static_cast<size_t>(id)] = name;
    }
    return labels;
  };
  if (auto it = j.find("id2label"); it != j.end() && !it->is_null()) {
    if (!it->is_object() || it->empty()) fail(path, "id2label: expected a non-empty object");
    auto labels = from_map(*it, true);
    if (auto n = j.find("num_labels"); n != j.end() && n->is_number_integer() &&
                                       n->get<int64_t>() != static_cast<int64_t>(labels.size()))
      fail(path, "num_labels " + n->dump() + " disagrees with id2label (" + std::to_string(labels.size()) + " labels)");
    return labels;
  }
  if (auto it = j.find("label2id"); it != j.end() && !it->is_null()) {
    if (!it->is_object() || it->empty()) fail(path, "label2id: expected a non-empty object");
    return from_map(*it, false);
  }
  const int64_t n = Reader{j, path, ""}.integer("num_labels", 2);
  if (n < 1 || n > 100000) fail(path, "num_labels: expected 1..100000, got " + std::to_string(n));
  std::vector<std::string> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back("LABEL_" + std::to_string(i));
  return labels;
}

// "moe": {"method", "experts", "expert_size", "shared", "shared_mode", "router", "top_k", "layers", "norm",
// "share_groups", "share_attention", "layer_experts"}; unknown
// keys are ignored like the rest of config.json; values are checked by MoeConfig::validate.
MoeConfig read_moe(const json& j, int64_t num_layers, const std::filesystem::path& path) {
  if (!j.is_object()) fail(path, "moe: expected an object, got " + j.dump());
  Reader r{j, path, "moe."};
  MoeConfig m;
  m.n_experts = bounded(r, "experts", 0, true);
  m.expert_size = bounded(r, "expert_size", 0, true);
  m.shared = r.integer("shared", 0);
  m.method = r.text("method", m.method);
  m.router = r.text("router", m.router);
  m.shared_mode = r.text("shared_mode", m.shared_mode);
  m.top_k = r.integer("top_k", 1);
  auto it = j.find("layers");
  if (it == j.end() || it->is_null()) {
    for (int64_t l = 0; l < num_layers; ++l) m.layers.push_back(l);
  } else {
    if (!it->is_array()) fail(path, "moe.layers: expected an array of layer indices, got " + it->dump());
    for (const json& v : *it) {
      if (!v.is_number_integer()) fail(path, "moe.layers: expected integers, got " + v.dump());
      m.layers.push_back(v.get<int64_t>());
    }
  }
  m.norm = r.text("norm", m.norm);
  if (auto groups = j.find("share_groups"); groups != j.end() && !groups->is_null()) {
    const std::string bad = "moe.share_groups: expected an array of arrays of layer indices, got ";
    if (!groups->is_array()) fail(path, bad + groups->dump());
    for (const json& g : *groups) {
      if (!g.is_array()) fail(path, bad + groups->dump());
      std::vector<int64_t> group;
      for (const json& v : g) {
        if (!v.is_number_integer()) fail(path, bad + groups->dump());
        group.push_back(v.get<int64_t>());
      }
      m.share_groups.push_back(std::move(group));
    }
  }
  if (auto le = j.find("layer_experts"); le != j.end() && !le->is_null()) {
    if (!le->is_array()) fail(path, "moe.layer_experts: expected an array of expert counts, got " + le->dump());
    for (const json& v : *le) {
      if (!v.is_number_integer()) fail(path, "moe.layer_experts: expected integers, got " + v.dump());
      m.layer_experts.push_back(v.get<int64_t>());
    }
  }
  if (auto sa = j.find("share_attention"); sa != j.end() && !sa->is_null()) {
    if (!sa->is_boolean()) fail(path, "moe.share_attention: expected true or false, got " + sa->dump());
    m.share_attention = sa->get<bool>();
  }
  return m;
}

// The architecture fields of BERT, RoBERTa, XLM-R and ELECTRA configs.
void read_bert_fields(const Reader& r, BertConfig& c) {
  c.hidden_size = bounded(r, "hidden_size", 0, true);
  if (c.electra()) c.embedding_size = bounded(r, "embedding_size", c.hidden_size);
  c.num_hidden_layers = bounded(r, "num_hidden_layers", 0, true);
  c.num_attention_heads = bounded(r, "num_attention_heads", 0, true);
  c.intermediate_size = bounded(r, "intermediate_size", 0, true);
  c.hidden_act = r.activation("hidden_act");
  c.hidden_dropout_prob = r.number("hidden_dropout_prob", 0.1f);
  c.attention_probs_dropout_prob = r.number("attention_probs_dropout_prob", 0.1f);
  c.type_vocab_size = bounded(r, "type_vocab_size", 2);
  c.layer_norm_eps = r.number("layer_norm_eps", 1e-12f);
  if (auto it = r.j.find("position_embedding_type"); it != r.j.end() && it->is_string() && *it != "absolute")
    fail(r.path, "position_embedding_type " + it->dump() + " is not supported (only \"absolute\")");
}

// DistilBertConfig's own keys (transformers' configuration_distilbert.py): LayerNorm eps is fixed
// at 1e-12 and there are no token types.
void read_distilbert_fields(const Reader& r, BertConfig& c) {
  for (const char* bert_key : {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"}) {
    const char* key = config_key(c, bert_key);
    if (!r.j.contains(key) && r.j.contains(bert_key))
      fail(r.path, std::string("missing required key \"") + key + "\" (hint: DistilBERT's config names " + bert_key +
                       " \"" + key + "\")");
  }
  c.hidden_size = bounded(r, "dim", 0, true);
  c.num_hidden_layers = bounded(r, "n_layers", 0, true);
  c.num_attention_heads = bounded(r, "n_heads", 0, true);
  c.intermediate_size = bounded(r, "hidden_dim", 0, true);
  c.hidden_act = r.activation("activation");
  c.hidden_dropout_prob = r.number("dropout", 0.1f);
  c.attention_probs_dropout_prob = r.number("attention_dropout", 0.1f);
  c.seq_classif_dropout = r.number("seq_classif_dropout", 0.2f);
  c.type_vocab_size = 0;
  c.layer_norm_eps = 1e-12f;
  if (r.boolean("sinusoidal_pos_embds", false))
    fail(r.path, "sinusoidal_pos_embds: true is not supported (moekit runs learned position embeddings only)");
}

}  // namespace

BertConfig parse_hf_config(const json& j, const std::filesystem::path& path) {
  if (!j.is_object()) fail(path, "expected a JSON object");
  Reader r{j, path, ""};
  BertConfig c;
  c.model_type = r.text("model_type", "bert");
  if (c.model_type != "bert" && !c.roberta_like() && !c.electra() && !c.distilbert())
    fail(path, "model_type \"" + c.model_type +
                   "\" is not supported (expected bert, roberta, xlm-roberta, electra or distilbert)");
  c.vocab_size = bounded(r, "vocab_size", 0, true);
  if (c.distilbert())
    read_distilbert_fields(r, c);
  else
    read_bert_fields(r, c);
  c.max_position_embeddings = bounded(r, "max_position_embeddings", 512);
  c.initializer_range = r.number("initializer_range", 0.02f);
  c.pad_token_id = r.integer("pad_token_id", c.roberta_like() ? 1 : 0);
  c.labels = read_labels(j, path);
  // As transformers: without problem_type, one label means regression.
  const std::string problem = r.text("problem_type", "");
  try {
    c.task = !problem.empty() ? parse_task(problem) : c.labels.size() == 1 ? Task::regression : Task::single_label;
  } catch (const Error& e) {
    fail(path, e.what());
  }
  // HF has no problem_type for token classification or QA: the architectures name says it.
  if (auto a = j.find("architectures"); a != j.end() && a->is_array() && !a->empty() && a->front().is_string()) {
    const std::string arch = a->front().get<std::string>();
    auto ends_with = [&](const std::string& suffix) {
      return arch.size() > suffix.size() && arch.compare(arch.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with("ForTokenClassification")) c.task = Task::token_classification;
    if (ends_with("ForQuestionAnswering")) c.task = Task::question_answering;
  }
  if (c.task == Task::question_answering) {
    if (auto v = j.find("version_2_with_negative"); v != j.end() && v->is_boolean()) c.qa_null_answers = v->get<bool>();
    c.qa_null_threshold = r.number("null_score_diff_threshold", 0.0f);
  }
  if (auto it = j.find("moe"); it != j.end() && !it->is_null()) c.moe = read_moe(*it, c.num_hidden_layers, path);
  try {
    c.validate();
  } catch (const Error& e) {
    fail(path, e.what());
  }
  return c;
}

BertConfig read_hf_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open file");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(path, std::string("malformed JSON: ") + e.what());
  }
  return parse_hf_config(j, path);
}

// The shortest decimal that reads back as f (0.1, not 0.10000000149011612 as the float widened to
// double prints), as Python writes the values transformers saves.
static double short_decimal(float f) {
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  return std::strtod(buf, nullptr);
}

json hf_config_json(const BertConfig& c) {
  json j;
  const std::string head = c.task == Task::question_answering ? "ForQuestionAnswering"
                           : c.per_token_head()                ? "ForTokenClassification"
                                                               : "ForSequenceClassification";
  j["architectures"] = {std::string(c.model_type == "xlm-roberta" ? "XLMRoberta"
                                    : c.roberta_like()          ? "Roberta"
                                    : c.electra()               ? "Electra"
                                    : c.distilbert()            ? "DistilBert"
                                                                : "Bert") + head};
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  if (c.distilbert()) {  // DistilBertConfig's keys
    j["dim"] = c.hidden_size;
    j["n_layers"] = c.num_hidden_layers;
    j["n_heads"] = c.num_attention_heads;
    j["hidden_dim"] = c.intermediate_size;
    j["activation"] = activation_name(c.hidden_act);
    j["dropout"] = short_decimal(c.hidden_dropout_prob);
    j["attention_dropout"] = short_decimal(c.attention_probs_dropout_prob);
    j["seq_classif_dropout"] = short_decimal(c.seq_classif_dropout);
    j["sinusoidal_pos_embds"] = false;
    j["tie_weights_"] = true;  // moekit ties the MLM decoder to the word embeddings
  } else {
    j["hidden_size"] = c.hidden_size;
    if (c.electra()) j["embedding_size"] = c.embedding_dim();
    j["num_hidden_layers"] = c.num_hidden_layers;
    j["num_attention_heads"] = c.num_attention_heads;
    j["intermediate_size"] = c.intermediate_size;
    j["hidden_act"] = activation_name(c.hidden_act);
    j["hidden_dropout_prob"] = short_decimal(c.hidden_dropout_prob);
    j["attention_probs_dropout_prob"] = short_decimal(c.attention_probs_dropout_prob);
    j["type_vocab_size"] = c.type_vocab_size;
    j["layer_norm_eps"] = short_decimal(c.layer_norm_eps);
    j["position_embedding_type"] = "absolute";
  }
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["initializer_range"] = short_decimal(c.initializer_range);
  j["pad_token_id"] = c.pad_token_id;
  json id2label = json::object(), label2id = json::object();
  for (size_t i = 0; i < c.labels.size(); ++i) {
    id2label[std::to_string(i)] = c.labels[i];
    label2id[c.labels[i]] = i;
  }
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  j["num_labels"] = c.labels.size();
  if (!c.per_token_head()) j["problem_type"] = task_name(c.task);  // transformers refuses other values
  if (c.moe) {
    const MoeConfig& m = *c.moe;
    j["moe"] = {{"method", m.method}, {"experts", m.n_experts}, {"expert_size", m.expert_size}, {"shared", m.shared},
                {"router", m.router},  {"top_k", m.top_k},       {"layers", m.layers},
                {"norm", m.norm}};
    if (!m.layer_experts.empty()) j["moe"]["layer_experts"] = m.layer_experts;
    if (m.tied()) j["moe"]["shared_mode"] = m.shared_mode;
    if (!m.share_groups.empty()) {
      j["moe"]["share_groups"] = m.share_groups;
      j["moe"]["share_attention"] = m.share_attention;
    }
  }
  if (c.task == Task::question_answering) {  // run_qa's names for the SQuAD 2.0 settings
    j["version_2_with_negative"] = c.qa_null_answers;
    j["null_score_diff_threshold"] = short_decimal(c.qa_null_threshold);
  }
  return j;
}

}  // namespace moekit::io
