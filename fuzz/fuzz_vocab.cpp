// libFuzzer target: vocab.txt (io::Vocab::load) and the WordPiece tokenizer. The fuzzed file is
// loaded as a vocabulary; its tokens plus the special ones then form a tokenizer that splits
// the same bytes as text (cased and uncased), exercising the tokenizer's Unicode handling.
#include <algorithm>
#include <set>

#include "fuzz/fuzz_util.h"
#include "io/vocab.h"
#include "io/wordpiece.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = moekit::fuzz::input_file(data, size, "vocab.txt");
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b", "##c"};
  moekit::fuzz::expect_error_or_success([&] {
    const moekit::io::Vocab loaded = moekit::io::Vocab::load(path);
    const std::set<std::string> have(tokens.begin(), tokens.end());
    for (const auto& t : loaded.tokens)
      if (!have.count(t)) tokens.push_back(t);
  });
  const std::string text(reinterpret_cast<const char*>(data), std::min<size_t>(size, 4096));
  moekit::fuzz::expect_error_or_success([&] {
    const moekit::io::Vocab vocab = moekit::io::Vocab::from_tokens(tokens);
    for (bool lower : {true, false}) moekit::io::WordPieceTokenizer(vocab, lower).tokenize(text);
  });
  return 0;
}
