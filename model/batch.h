// A padded batch of token sequences, as the model consumes it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moekit {

struct Batch {
  int64_t batch = 0;  // sequences
  int64_t seq = 0;    // padded length; row of token (b, t) is b * seq + t
  std::vector<int32_t> ids;       // [batch * seq] vocabulary ids (padding = pad_token_id)
  std::vector<int32_t> type_ids;  // [batch * seq] token type (segment) ids
  std::vector<uint8_t> mask;      // [batch * seq] 1 = real token, 0 = padding
  std::vector<int> labels;        // [batch] gold label ids (single-label tasks), or empty
  // [batch * num_labels] row-major float targets: the value (regression) or 0/1 per label
  // (multi-label); empty for single-label tasks and unlabeled batches.
  std::vector<float> targets;
  // Token classification: [batch * seq] gold tag per token, kIgnoreToken where no loss is taken
  // (special tokens, later sub-tokens of a word, padding); empty when unlabelled.
  std::vector<int> token_labels;
  static constexpr int kIgnoreToken = -100;  // torch's CrossEntropyLoss ignore_index, as HF uses it
  // Question answering: [batch] the gold span's first and last token (0, the [CLS] row, when the
  // answer is not in this window or there is none); empty when unlabelled.
  std::vector<int> start_positions, end_positions;

  int64_t n_tok() const { return batch * seq; }
  bool labelled() const {
    return !labels.empty() || !targets.empty() || !token_labels.empty() || !start_positions.empty();
  }
  int64_t real_tokens() const {
    int64_t n = 0;
    for (uint8_t m : mask) n += m;
    return n;
  }
};

// The model inputs (ids, type ids, mask) of sequences [first, first + count) of b, each cut to
// its first `seq` positions (b.seq when 0); no labels.
inline Batch sequences(const Batch& b, int64_t first, int64_t count, int64_t seq = 0) {
  Batch out;
  out.batch = count;
  out.seq = seq > 0 ? seq : b.seq;
  for (int64_t s = first; s < first + count; ++s) {
    const auto from = static_cast<std::ptrdiff_t>(s * b.seq), to = from + static_cast<std::ptrdiff_t>(out.seq);
    out.ids.insert(out.ids.end(), b.ids.begin() + from, b.ids.begin() + to);
    out.type_ids.insert(out.type_ids.end(), b.type_ids.begin() + from, b.type_ids.begin() + to);
    out.mask.insert(out.mask.end(), b.mask.begin() + from, b.mask.begin() + to);
  }
  return out;
}

// The number of real tokens of a key mask row m[0, seq) whose padding is all at the right
// (make_batch's layout: m = 1...1 0...0, at least one 1); -1 for any other mask.
inline int64_t right_padded_real(const uint8_t* m, int64_t seq) {
  int64_t real = 0;
  while (real < seq && m[real]) ++real;
  for (int64_t t = real; t < seq; ++t)
    if (m[t]) return -1;
  return real > 0 ? real : -1;
}

// Positions of sequence s up to its last real token when its padding is all at the right;
// b.seq otherwise, and for a sequence without a real token (whose attention spreads over every
// position).
inline int64_t right_padded_length(const Batch& b, int64_t s) {
  const int64_t real = right_padded_real(&b.mask[static_cast<size_t>(s * b.seq)], b.seq);
  return real > 0 ? real : b.seq;
}

}  // namespace moekit
