#include "tests/support/synthetic_task.h"

#include <fstream>

#include "model/rng.h"

namespace moekit::test {

namespace {
const std::vector<std::string> kKeywords = {"red", "green", "blue"};

std::string filler(int i) { return "w" + std::to_string(i); }
}  // namespace

io::Vocab synthetic_vocab() {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (const auto& k : kKeywords) tokens.push_back(k);
  for (int i = 0; i < 40; ++i) tokens.push_back(filler(i));
  return io::Vocab::from_tokens(tokens);
}

void write_keyword_task(const std::filesystem::path& tsv, int n, uint64_t seed) {
  Rng rng(seed);
  std::ofstream out(tsv);
  out << "label\ttext\n";
  for (int e = 0; e < n; ++e) {
    const size_t label = rng.below(kKeywords.size());
    const int len = 4 + static_cast<int>(rng.below(10));
    const int at = static_cast<int>(rng.below(static_cast<uint64_t>(len)));
    out << kKeywords[label] << "\t";
    for (int t = 0; t < len; ++t) {
      if (t) out << " ";
      out << (t == at ? kKeywords[label] : filler(static_cast<int>(rng.below(40))));
    }
    out << "\n";
  }
}

}  // namespace moekit::test
