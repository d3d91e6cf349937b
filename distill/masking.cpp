#include "distill/masking.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "model/error.h"

namespace moekit::distill {

void MaskingOptions::validate() const {
  if (!(rate > 0 && rate < 1)) fail("", "--mlm-probability must be in (0, 1), got " + std::to_string(rate));
  if (!(mask_prob >= 0 && random_prob >= 0 && mask_prob + random_prob <= 1))
    fail("", "--mask-replace and --random-replace must be >= 0 and sum to at most 1");
}

MaskVocab MaskVocab::from_vocab(const io::Vocab& vocab) {
  MaskVocab m;
  const size_t n = vocab.size();
  m.special.assign(n, 0);
  m.continuation.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = vocab.tokens[i];
    m.special[i] = t.size() >= 3 && t.front() == '[' && t.back() == ']';
    m.continuation[i] = t.size() > 2 && t.compare(0, 2, "##") == 0;
    if (!m.special[i]) m.replacements.push_back(static_cast<int32_t>(i));
  }
  m.mask_id = vocab.id("[MASK]");
  if (m.mask_id < 0) fail(vocab.path, "no [MASK] token: masked-LM pretraining needs one");
  if (m.replacements.empty()) fail(vocab.path, "only special tokens: nothing to predict");
  return m;
}

MaskedTokens mask_batch(Batch& batch, const MaskVocab& vocab, const MaskingOptions& o, Rng& rng) {
  MaskedTokens out;
  const auto vocab_n = static_cast<int32_t>(vocab.special.size());
  auto is = [&](const std::vector<uint8_t>& table, int32_t id) { return id >= 0 && id < vocab_n && table[static_cast<size_t>(id)]; };
  std::vector<uint8_t> chosen(static_cast<size_t>(batch.n_tok()), 0);
  for (int64_t b = 0; b < batch.batch; ++b) {
    // Groups of candidate rows: a word with its ## pieces (whole_word), else one token each.
    std::vector<std::vector<int64_t>> groups;
    int64_t candidates = 0;
    for (int64_t t = 0; t < batch.seq; ++t) {
      const int64_t row = b * batch.seq + t;
      const int32_t id = batch.ids[static_cast<size_t>(row)];
      if (!batch.mask[static_cast<size_t>(row)] || is(vocab.special, id)) continue;
      if (o.whole_word && is(vocab.continuation, id) && !groups.empty() && groups.back().back() == row - 1)
        groups.back().push_back(row);
      else
        groups.push_back({row});
      ++candidates;
    }
    if (candidates == 0) continue;
    const auto want = std::max<int64_t>(1, std::llround(o.rate * static_cast<double>(candidates)));
    for (size_t i = groups.size(); i > 1; --i) std::swap(groups[i - 1], groups[rng.below(i)]);  // Fisher-Yates
    int64_t taken = 0;
    for (const auto& g : groups) {
      if (taken >= want) break;
      // A word that would overshoot is skipped, as HF's whole-word collator does (a lone first
      // word is taken anyway, so every sequence predicts something).
      if (taken + static_cast<int64_t>(g.size()) > want && taken > 0) continue;
      for (int64_t row : g) chosen[static_cast<size_t>(row)] = 1;
      taken += static_cast<int64_t>(g.size());
    }
  }
  for (int64_t row = 0; row < batch.n_tok(); ++row) {
    if (!chosen[static_cast<size_t>(row)]) continue;
    int32_t& id = batch.ids[static_cast<size_t>(row)];
    out.rows.push_back(row);
    out.targets.push_back(id);
    const double u = rng.uniform();
    if (u < o.mask_prob)
      id = vocab.mask_id;
    else if (u < o.mask_prob + o.random_prob)
      id = vocab.replacements[rng.below(vocab.replacements.size())];
  }
  return out;
}

}  // namespace moekit::distill
