#include "cli/common.h"

#include <iostream>

#include <CLI/CLI.hpp>

#include "io/dataset.h"
#include "model/error.h"

namespace moekit::cli {

void print_warning(const std::string& message) { std::cerr << "moekit: warning: " << escape_for_terminal(message) << "\n"; }

io::LoadedModel load_model_verbose(const std::filesystem::path& path, io::LoadFor use,
                                   std::optional<Precision> precision) {
  io::LoadedModel loaded = io::load_model(path, 0, use, precision);
  for (const auto& w : loaded.warnings) print_warning(w);
  return loaded;
}

void add_precision_option(CLI::App* cmd, std::string& value) {
  cmd->add_option("--precision", value,
                  "matrix products in fp32 or bf16 (bf16 operands, fp32 accumulation; LayerNorm, softmax and "
                  "residuals stay fp32); default: fp32, or bf16 for a bf16 export")
      ->check(CLI::IsMember({"fp32", "bf16"}));
}

std::optional<Precision> parse_precision_option(const std::string& value) {
  if (value.empty()) return std::nullopt;
  return parse_precision(value);
}

std::unique_ptr<io::Tokenizer> make_tokenizer(const io::LoadedModel& loaded) { return io::load_tokenizer(loaded); }

int resolve_max_len(const BertConfig& config, int max_len, int cap) {
  const int64_t limit = config.max_seq_len();
  if (max_len == 0) return static_cast<int>(std::min<int64_t>(limit, cap));
  if (max_len < 3) fail("", "--max-seq-len must be at least 3, got " + std::to_string(max_len));
  if (max_len > limit)
    fail("", "--max-seq-len " + std::to_string(max_len) + " exceeds the model's position table (" +
                 std::to_string(limit) + ")");
  return max_len;
}

std::vector<io::EncodedExample> load_encoded(const std::filesystem::path& data, const io::LoadedModel& loaded,
                                             int max_len, bool require_labels, int cap) {
  const auto examples = io::read_dataset(data, loaded.model->config.labels, require_labels);
  return io::encode_examples(*make_tokenizer(loaded), examples, resolve_max_len(loaded.model->config, max_len, cap));
}

}  // namespace moekit::cli
