#include "cli/common.h"

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "io/dataset.h"
#include "io/progress.h"
#include "model/error.h"

namespace moekit::cli {

void print_warning(const std::string& message) {
  if (const auto* w = distill::started_world(); w && !w->is_root()) return;
  std::cerr << "moekit: warning: " << escape_for_terminal(message) << "\n";
}

distill::Communicator& data_parallel_world() {
  distill::Communicator& w = distill::world();
  if (!w.is_root()) {
    io::Progress::set_quiet(true);
    std::fflush(stdout);
    if (!std::freopen("/dev/null", "w", stdout)) std::fclose(stdout);
  }
  return w;
}

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
  const BertConfig& c = loaded.model->config;
  const auto examples = io::read_dataset(data, c.labels, require_labels, c.task);
  return io::encode_examples(*make_tokenizer(loaded), examples, resolve_max_len(loaded.model->config, max_len, cap));
}

}  // namespace moekit::cli
