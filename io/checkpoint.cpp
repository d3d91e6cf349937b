#include "io/checkpoint.h"

#include <algorithm>
#include <fstream>

#include "io/atomic_file.h"
#include "io/bind.h"
#include "io/config_fit.h"
#include "io/exported_model.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "io/wordpiece.h"
#include "model/error.h"
#include "model/mlm_head.h"

namespace moekit::io {

namespace fs = std::filesystem;

namespace {

// A model exported as one file: config, vocabulary and tensors all come from that file.
LoadedModel load_exported(const fs::path& file, uint64_t head_seed, LoadFor use);
LoadedModel load_directory(const fs::path& dir, uint64_t head_seed);

}  // namespace

LoadedModel load_model(const fs::path& dir, uint64_t head_seed, LoadFor use, std::optional<Precision> precision) {
  if (!fs::exists(dir)) fail(dir, "no such model directory");
  LoadedModel out;
  if (fs::is_regular_file(dir)) {
    if (!is_exported_model_file(dir))
      fail(dir, "expected a model directory (config.json + model.safetensors) or a file from `moekit export`");
    out = load_exported(dir, head_seed, use);
  } else {
    out = load_directory(dir, head_seed);
  }
  const bool stored_bf16 = out.dtype_counts.count("BF16") && !out.dtype_counts.count("F32");
  out.precision = precision.value_or(use == LoadFor::inference && stored_bf16 ? Precision::bf16 : Precision::fp32);
  out.model->set_precision(out.precision);
  if (use == LoadFor::inference) out.model->pack_for_inference();
  return out;
}

namespace {

LoadedModel load_directory(const fs::path& dir, uint64_t head_seed) {
  if (!fs::is_directory(dir)) fail(dir, "expected a model directory (config.json + model.safetensors)");
  const fs::path config_path = dir / "config.json";
  const fs::path weights_path = dir / "model.safetensors";
  if (!fs::exists(config_path)) fail(config_path, "missing (a model directory needs config.json)");
  if (!fs::exists(weights_path)) {
    if (fs::exists(dir / "pytorch_model.bin"))
      fail(weights_path, "missing; only pytorch_model.bin is present (convert it to safetensors first)");
    fail(weights_path, "missing (a model directory needs model.safetensors)");
  }
  const BertConfig config = read_hf_config(config_path);
  SafetensorsFile file = read_safetensors(weights_path);
  check_config_fits_weights(config, file.tensors, config_path, weights_path);
  LoadedModel out = bind_model(config, std::move(file.tensors), weights_path, head_seed);
  out.path = dir;
  out.weights_bytes = fs::file_size(weights_path);
  if (fs::exists(dir / "vocab.txt")) {
    out.vocab = Vocab::load(dir / "vocab.txt");
    if (static_cast<int64_t>(out.vocab->size()) > config.vocab_size)
      fail(dir / "vocab.txt", std::to_string(out.vocab->size()) + " tokens, but config.json vocab_size is " +
                                  std::to_string(config.vocab_size));
  }
  out.do_lower_case = read_do_lower_case(dir);
  out.tokenizer_files = tokenizer_files(dir);
  return out;
}

LoadedModel load_exported(const fs::path& file, uint64_t head_seed, LoadFor use) {
  const bool int8_kernels = use == LoadFor::inference;  // see LoadFor
  ExportedModel ex = read_exported_model(file, int8_kernels ? Int8Tensors::keep : Int8Tensors::dequantise);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ex.config_json);
  } catch (const nlohmann::json::exception& e) {
    fail(file, std::string("embedded config is not JSON: ") + e.what());
  }
  const BertConfig config = parse_hf_config(j, file);
  check_config_fits_weights(config, ex.tensors, file, file);
  {
    // `export --prune` drops expert provenance (neuron_index); inference does not need it.
    BertModel probe(config);
    for (const IndexParam& ip : probe.index_params())
      if (!ex.tensors.count(ip.name) && ip.name.find(".neuron_index") != std::string::npos)
        ex.tensors[ip.name] = int32_tensor(std::vector<int32_t>(ip.values->size(), -1),
                                           {static_cast<int64_t>(ip.values->size())});
  }
  LoadedModel out = bind_model(config, std::move(ex.tensors), file, head_seed, ex.scales);
  out.path = file;
  out.weights_bytes = fs::file_size(file);
  out.dtype_counts = ex.stored_dtypes;
  out.vocab = std::move(ex.vocab);
  out.do_lower_case = ex.do_lower_case;
  for (const auto& [name, text] : ex.tokenizer_files)
    if (!is_tokenizer_file_name(name)) fail(file, "embeds an unknown tokenizer file \"" + name + "\"");
  out.embedded_tokenizer = std::move(ex.tokenizer_files);
  out.warnings.insert(out.warnings.begin(), ex.warnings.begin(), ex.warnings.end());
  return out;
}

}  // namespace

LoadedModel bind_model(const BertConfig& config, std::map<std::string, Tensor> tensors, const fs::path& weights_path,
                       uint64_t head_seed, const std::map<std::string, Tensor>& int8_scales) {
  LoadedModel out;
  out.model = std::make_unique<BertModel>(config);
  BertModel& model = *out.model;
  // A masked-LM head (BertForMaskedLM / BertForPreTraining / DistilBertForMaskedLM, or `moekit
  // pretrain`) is kept; its decoder is the word-embedding table (tied), so HF's decoder weight
  // (cls.predictions.decoder.weight, vocab_projector.weight) is an alias, and so is BERT's
  // cls.predictions.decoder.bias.
  std::optional<Tensor> decoder_weight;
  const MlmNames mlm = mlm_names(config);
  // Only a complete head counts: partial leftovers are ignored as before.
  auto has = [&](const std::string& a, const std::string& b = "") { return tensors.count(a) || (!b.empty() && tensors.count(b)); };
  if (has(mlm.bias, mlm.bias_alias) && has(mlm.dense + ".weight") && has(mlm.dense + ".bias") &&
      has(mlm.norm + ".weight", mlm.norm + ".gamma") && has(mlm.norm + ".bias", mlm.norm + ".beta")) {
    model.mlm.emplace();
    model.mlm->init(config);
    if (auto it = tensors.find(mlm.decoder_weight); it != tensors.end()) {
      decoder_weight = std::move(it->second);
      tensors.erase(it);
    }
    if (auto it = tensors.find(mlm.bias_alias); !mlm.bias_alias.empty() && it != tensors.end()) {
      if (!tensors.count(mlm.bias)) tensors[mlm.bias] = std::move(it->second);
      tensors.erase(mlm.bias_alias);
    }
  }
  ParamList params = model.params();
  if (!int8_scales.empty()) {
    // int8 Linear weights go straight to the layer; the rest of the I8 tensors become float.
    std::vector<const Param*> int8_params;
    int attached = 0;
    for (Linear* linear : model.linears()) {
      auto t = tensors.find(linear->weight.name);
      auto s = int8_scales.find(linear->weight.name);
      if (t == tensors.end() || s == int8_scales.end() || t->second.dtype != DType::I8 ||
          t->second.shape != std::vector<int64_t>{linear->out(), linear->in()})
        continue;  // absent or misshapen: left to bind_params, which reports it with the rest
      try {
        linear->set_int8_weight(tensor_to_quantized(t->second, s->second, t->first));
      } catch (const Error& e) {
        fail(weights_path, e.what());
      }
      int8_params.push_back(&linear->weight);
      tensors.erase(t);
      ++attached;
    }
    for (auto& [name, t] : tensors)
      if (t.dtype == DType::I8 && int8_scales.count(name)) t = dequantize_tensor(t, int8_scales.at(name), name, weights_path);
    params.erase(std::remove_if(params.begin(), params.end(),
                                [&](const Param* p) {
                                  return std::find(int8_params.begin(), int8_params.end(), p) != int8_params.end();
                                }),
                 params.end());
    if (attached) out.dtype_counts["I8"] = attached;
  }
  std::vector<std::string> head = {model.classifier.weight.name, model.classifier.bias.name};
  if (!config.per_token_head()) head.insert(head.end(), {model.pooler.weight.name, model.pooler.bias.name});
  BindResult bound = bind_params(params, tensors, weights_path, config.prefix(), head, model.index_params());
  for (const auto& [dtype, n] : bound.dtype_counts) out.dtype_counts[dtype] += n;
  out.warnings = bound.warnings;
  if (decoder_weight) {
    const Mat& word = model.embeddings.word.value;
    const std::vector<int64_t> want{word.rows(), word.cols()};
    if (decoder_weight->shape != want || !is_float(decoder_weight->dtype))
      fail(weights_path, mlm.decoder_weight + ": expected a float tensor of shape " + shape_string(want) +
                             " (tied to the word embeddings), got " + shape_string(decoder_weight->shape));
    if ((tensor_to_mat(*decoder_weight, mlm.decoder_weight) - word).cwiseAbs().maxCoeff() > 0)
      out.warnings.push_back(weights_path.string() + ": " + mlm.decoder_weight +
                             " differs from the word embeddings; moekit ties the "
                             "decoder to them (as BERT does) and ignores it");
  }
  out.fresh_head = std::find(bound.missing_head.begin(), bound.missing_head.end(), model.classifier.weight.name) !=
                   bound.missing_head.end();
  if (!bound.missing_head.empty()) {
    // HF's from_pretrained does the same for a checkpoint without this task's head.
    Rng rng(head_seed);
    for (const std::string& name : bound.missing_head) {
      Param* p = nullptr;
      for (Param* q : model.params())
        if (q->name == name) p = q;
      if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
        p->value.setZero();
      } else {
        for (Eigen::Index i = 0; i < p->value.size(); ++i)
          p->value.data()[i] = static_cast<float>(rng.normal() * config.initializer_range);
      }
    }
    std::string names;
    for (const auto& n : bound.missing_head) names += (names.empty() ? "" : ", ") + n;
    out.warnings.push_back(weights_path.string() + ": no trained head (" + names +
                           "): initialised a new one with seed " + std::to_string(head_seed) +
                           "; train it before trusting predictions");
  }

  return out;
}

std::map<std::string, Tensor> model_tensors(BertModel& model) {
  // An int8 inference layer has no float weights left to write (see LoadFor).
  for (Linear* linear : model.linears())
    if (linear->int8_weight)
      fail("", linear->weight.name + ": the model was loaded for inference with int8 weights; load it for training "
               "(float weights) to save or export it");
  std::map<std::string, Tensor> tensors;
  for (Param* p : model.params()) tensors[p->name] = mat_to_tensor(p->value, DType::F32, p->vector);
  for (const IndexParam& ip : model.index_params())
    tensors[ip.name] = int32_tensor(*ip.values, {static_cast<int64_t>(ip.values->size())});
  return tensors;
}

void save_model(const fs::path& dir, BertModel& model, const Vocab* vocab, bool do_lower_case,
                const std::vector<fs::path>& tokenizer_files) {
  const fs::path target = dir.has_filename() ? dir : dir.parent_path();
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const fs::path tmp = temp_sibling(target);
  fs::create_directories(tmp);
  try {
    write_text_atomic(tmp / "config.json", hf_config_json(model.config).dump(2) + "\n");
    write_safetensors(tmp / "model.safetensors", model_tensors(model), {{"format", "pt"}});
    for (const fs::path& f : tokenizer_files) {
      std::error_code ec;
      fs::copy_file(f, tmp / f.filename(), fs::copy_options::overwrite_existing, ec);
      if (ec) fail(f, "cannot copy the tokenizer file into the saved model: " + ec.message());
    }
    if (vocab) {
      write_file_atomic(tmp / "vocab.txt", [&](std::ostream& os) { vocab->save(os); });
      // DistilBERT's tokenizer is BERT's WordPiece without token type ids (its model takes none).
      const char* tokenizer_class = model.config.distilbert() ? "DistilBertTokenizer" : "BertTokenizer";
      nlohmann::json tok = {{"do_lower_case", do_lower_case}, {"tokenizer_class", tokenizer_class}};
      write_text_atomic(tmp / "tokenizer_config.json", tok.dump(2) + "\n");
    }
    commit_directory(tmp, target);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace moekit::io
