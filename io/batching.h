// Tokenised examples -> padded batches the model consumes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/dataset.h"
#include "io/token_dataset.h"
#include "io/tokenizer.h"
#include "model/batch.h"

namespace moekit::io {

// What decoding a QA feature's span back to text needs, shared by an example's features.
struct QaContext {
  std::string id, context;
  std::vector<WordSpan> words;           // the context's whitespace-separated words, byte offsets
  std::vector<std::string> gold;         // gold answer texts (empty: unanswerable, or unlabelled)
  bool labelled = false;
};

struct EncodedExample {
  std::vector<int32_t> ids, type_ids;
  int label = -1;
  std::vector<float> targets;  // regression / multi-label gold (io::Example::targets)
  // Token classification (examples with words): the words, the position in ids of each word's
  // first sub-token (-1 when the word got no token: truncated, or nothing left after
  // normalisation), each word's gold tag (empty = unlabeled), and per id the tag trained on
  // (the word's tag at its first sub-token, Batch::kIgnoreToken elsewhere; empty = unlabeled).
  std::vector<std::string> words;
  std::vector<int32_t> word_starts;
  std::vector<int> word_tags, token_labels;
  // Question answering: one feature (window) of an example; io/qa_features.h.
  std::shared_ptr<const QaContext> qa;
  int64_t qa_example = -1;            // index of the example in the input (its features are adjacent)
  std::vector<int32_t> token_word;    // per id: the context word it belongs to, -1 for question/special tokens
  int start_position = -1, end_position = -1;  // gold span tokens (0, 0: not in this window); -1 unlabelled
  bool labelled() const { return label >= 0 || !targets.empty() || !token_labels.empty() || start_position >= 0; }
};

// Tokenises every example (with the tokenizer's special tokens, truncated to max_len). Examples
// with words (token classification) are encoded word by word, as HF's is_split_into_words: each
// word as " " + word without special tokens (so byte-level BPE and Metaspace see a word start,
// like add_prefix_space), between the special tokens the tokenizer puts around one sequence;
// truncation drops whole words from the end. Question-answering examples become one feature per
// window of their context (io/qa_features.h), so the result may be longer than the input.
std::vector<EncodedExample> encode_examples(const Tokenizer& tokenizer, const std::vector<Example>& examples,
                                            int max_len);

// For messages: "120 examples", or for question answering (one feature per window) "130 windows of
// 120 questions", so a user can match the count to the file's.
std::string describe_count(const std::vector<EncodedExample>& examples);

// Pads the chosen examples (by index) to their longest length with pad_id. Labels (and targets)
// are copied when every chosen example has them.
Batch make_batch(const std::vector<EncodedExample>& examples, const std::vector<size_t>& indices, int32_t pad_id);

// Indices 0..n-1 cut into batches of at most batch_size, each batch holding examples of similar
// length (sorted by length), so little compute goes to padding. Deterministic.
std::vector<std::vector<size_t>> length_grouped_batches(const std::vector<EncodedExample>& examples,
                                                        size_t batch_size);

}  // namespace moekit::io
