// moekit tokenize: the token ids of a dataset as the model's tokenizer makes them, one JSON line
// per example {"ids": [...], "type_ids": [...], "tokens": [...]}, in input order; with --offsets also
// "offsets": [[start, stop], ...], byte ranges of the tokens in their text ([0, 0] for special tokens).
#include <climits>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/atomic_file.h"
#include "io/dataset.h"
#include "io/tokenizer.h"

namespace moekit::cli {

namespace {

struct TokenizeOptions {
  std::string model, data, out;
  bool pairs = false, offsets = false;
  int max_seq_len = 0;
};

void run_tokenize(const TokenizeOptions& o) {
  // A directory needs only its tokenizer files; an exported model file carries its vocabulary.
  std::unique_ptr<io::Tokenizer> tokenizer;
  if (std::filesystem::is_directory(o.model)) tokenizer = io::load_tokenizer(o.model);
  else tokenizer = make_tokenizer(load_model_verbose(o.model, io::LoadFor::inference));
  const auto examples = io::read_unlabelled(o.data, o.pairs);
  const int max_len = o.max_seq_len > 0 ? o.max_seq_len : INT_MAX / 2;
  auto write = [&](std::ostream& os) {
    for (const io::Example& e : examples) {
      const io::Encoding enc = tokenizer->encode(e.text, e.has_pair ? &e.text_pair : nullptr, max_len);
      nlohmann::ordered_json line{{"ids", enc.ids}, {"type_ids", enc.type_ids}, {"tokens", enc.tokens}};
      if (o.offsets) line["offsets"] = enc.offsets;
      os << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
  };
  if (o.out.empty()) write(std::cout);
  else io::write_file_atomic(o.out, write);
  std::cerr << "tokenized " << examples.size() << " examples with " << tokenizer->describe() << "\n";
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto opts = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Token ids of a dataset as the model's tokenizer makes them (JSON lines)");
  cmd->add_option("--model", opts->model, "model directory (or just its tokenizer files), or an exported model file")
      ->required();
  cmd->add_option("--data", opts->data, "TXT (one text a line), TSV or JSONL file")->required();
  cmd->add_flag("--pairs", opts->pairs, "encode text with text_pair (every example needs one)");
  cmd->add_flag("--offsets", opts->offsets, "add each token's byte range [start, stop) in its text (TEI's start/stop)");
  cmd->add_option("--max-seq-len", opts->max_seq_len, "truncate to this many tokens (0 = no truncation)")
      ->capture_default_str()->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--out", opts->out, "output JSONL file (default: stdout)");
  cmd->callback([opts] { run_tokenize(*opts); });
}

}  // namespace moekit::cli
