// A model directory, as Hugging Face writes it and moekit reads and writes it:
//   config.json, model.safetensors, vocab.txt (+ tokenizer_config.json for do_lower_case).
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "io/vocab.h"
#include "model/bert.h"

namespace moekit::io {

struct LoadedModel {
  std::unique_ptr<BertModel> model;
  std::optional<Vocab> vocab;  // absent when the directory has no vocab.txt
  std::vector<std::filesystem::path> tokenizer_files;  // the directory's other tokenizer files (io/tokenizer.h)
  std::map<std::string, std::string> embedded_tokenizer;  // an exported file's tokenizer files: name -> contents
  bool do_lower_case = true;
  std::filesystem::path path;
  uint64_t weights_bytes = 0;               // size of model.safetensors
  std::map<std::string, int> dtype_counts;  // stored dtype -> tensors
  std::vector<std::string> warnings;        // for the CLI to print
  bool fresh_head = false;                  // the checkpoint had no classifier: a new seeded one was made
  Precision precision = Precision::fp32;    // what the float Linear layers compute in
};

// What a loaded model is for; only int8 exports load differently.
//   training:  every tensor as float (int8 dequantised). Anything may use the model: train,
//              distill, importance, moefy, export, inspect, save.
//   inference: the int8 weights of Linear layers stay int8 (Linear::int8_weight, no float copy)
//              and run on oneDNN's int8 kernels on every CPU; everything else (embeddings, gate
//              routers) is dequantised. Float Linear layers are packed once for oneDNN
//              (BertModel::pack_for_inference) at the load's precision. Only forward without a
//              cache works on int8 layers (predict, eval, bench, a distillation teacher);
//              training through them, saving or exporting the model is refused with an Error.
enum class LoadFor { training, inference };

// Reads and validates a model directory, or a single file written by `moekit export`
// (compact HDF5 or .safetensors with moekit metadata). A checkpoint without a classifier (or
// pooler) gets a new head initialised from `head_seed`, with a warning. config.json "moe" makes
// the listed layers MoE: every expert tensor, router weight, hash table and neuron_index must be
// present.
// precision: of the float products; by default fp32, except bf16 for a model whose weights were
// stored as bf16 (`export --dtype bf16`) and loaded for inference.
LoadedModel load_model(const std::filesystem::path& dir, uint64_t head_seed = 0, LoadFor use = LoadFor::training,
                       std::optional<Precision> precision = std::nullopt);

// Builds a model for `config` and binds `tensors` (all problems in one error naming
// weights_path). An I8 tensor with a scale in `int8_scales` becomes its Linear's int8 weight
// when it has exactly that Linear's name and shape, and is dequantised otherwise (embeddings,
// gate routers). Path, file size, vocabulary and do_lower_case are left for the caller.
LoadedModel bind_model(const BertConfig& config, std::map<std::string, Tensor> tensors,
                       const std::filesystem::path& weights_path, uint64_t head_seed,
                       const std::map<std::string, Tensor>& int8_scales = {});

// Writes config.json, model.safetensors (F32), vocab.txt and tokenizer_config.json into `dir`,
// atomically: a temporary sibling directory renamed into place. `tokenizer_files` (a source
// model's tokenizer.json, vocab.json, merges.txt, ...: LoadedModel::tokenizer_files) are copied in
// first, so the saved model keeps its tokenizer.
void save_model(const std::filesystem::path& dir, BertModel& model, const Vocab* vocab, bool do_lower_case,
                const std::vector<std::filesystem::path>& tokenizer_files = {});

// Parameter name -> F32 tensor (1-D for [1, n] parameters), HF layout; MoE hash tables and
// neuron_index as I32 [n]. Error when the model holds int8 inference-only weights.
std::map<std::string, Tensor> model_tensors(BertModel& model);

}  // namespace moekit::io
