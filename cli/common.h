// Shared CLI plumbing: loading a model with its warnings printed, reading a labelled dataset.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "distill/communicator.h"
#include "io/batching.h"
#include "io/checkpoint.h"

namespace CLI {
class App;
}

namespace moekit::cli {

// Loads a model directory (or exported file) and prints its warnings to stderr. Commands that
// only run the model forward pass LoadFor::inference (int8 exports then run on int8 kernels).
io::LoadedModel load_model_verbose(const std::filesystem::path& path, io::LoadFor use = io::LoadFor::training,
                                   std::optional<Precision> precision = std::nullopt);
// --precision fp32|bf16 (bench, eval, predict, train, distill); empty = the model's own.
void add_precision_option(CLI::App* cmd, std::string& value);
std::optional<Precision> parse_precision_option(const std::string& value);

// The model's tokenizer (io::load_tokenizer); Error if the model ships none.
std::unique_ptr<io::Tokenizer> make_tokenizer(const io::LoadedModel& loaded);

// max_len 0 = the model's limit, at most `cap`. Errors if max_len exceeds what the position table
// allows.
int resolve_max_len(const BertConfig& config, int max_len, int cap = 512);
// The cap of training commands' default length: 128 tokens, as BERT fine-tuning usually uses.
constexpr int kTrainMaxLen = 128;

// Reads, tokenises and returns a dataset for `loaded`'s labels.
std::vector<io::EncodedExample> load_encoded(const std::filesystem::path& data, const io::LoadedModel& loaded,
                                             int max_len, bool require_labels, int cap = 512);

// On ranks other than 0 of a data-parallel run: nothing (rank 0 prints it).
void print_warning(const std::string& message);

// The data-parallel world of train, distill, pretrain and importance (MPI's under mpirun). Ranks
// other than 0 then print nothing: no progress or warnings, stdout discarded.
distill::Communicator& data_parallel_world();

}  // namespace moekit::cli
