// BERT's masked-LM input corruption (Devlin et al. 2019, 3.1; HF DataCollatorForLanguageModeling
// and DataCollatorForWholeWordMask): per sequence, round(rate x candidates) tokens (at least one)
// are chosen among the real, non-special tokens; of those 80% become [MASK], 10% a random
// non-special token, 10% stay. With whole_word, a word and its "##" pieces are chosen together.
// Masks are drawn from the Rng the caller passes, so a trainer that seeds it per step gets a
// new mask every epoch (RoBERTa's dynamic masking) that a resumed run replays exactly.
#pragma once
#include <cstdint>
#include <vector>

#include "io/vocab.h"
#include "model/batch.h"
#include "model/rng.h"

namespace moekit::distill {

struct MaskingOptions {
  double rate = 0.15;        // fraction of candidate tokens predicted
  double mask_prob = 0.8;    // of the chosen: replaced by [MASK]
  double random_prob = 0.1;  // of the chosen: replaced by a random token (the rest stay)
  bool whole_word = false;

  void validate() const;  // Error naming the bad option
};

// What masking needs from the vocabulary.
struct MaskVocab {
  int32_t mask_id = -1;
  std::vector<uint8_t> special;       // [id]: never chosen, never drawn as a replacement ([CLS], [PAD], ...)
  std::vector<uint8_t> continuation;  // [id]: a "##" piece, grouped with the token before it
  std::vector<int32_t> replacements;  // ids a random replacement is drawn from (the non-special ones)

  // Special tokens are the bracketed ones ([PAD], [CLS], [SEP], [MASK], [UNK], [unused0], ...).
  // Error when the vocabulary has no [MASK].
  static MaskVocab from_vocab(const io::Vocab& vocab);
};

struct MaskedTokens {
  std::vector<int64_t> rows;  // token rows (b * seq + t) to predict, ascending
  std::vector<int> targets;   // their original ids
};

// Corrupts batch.ids in place and returns what to predict.
MaskedTokens mask_batch(Batch& batch, const MaskVocab& vocab, const MaskingOptions& options, Rng& rng);

}  // namespace moekit::distill
