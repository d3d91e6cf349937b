// Extractive QA examples -> model features, as Hugging Face's run_qa prepares SQuAD: each
// feature is [CLS] question [SEP] window of the context [SEP] (the tokenizer's own pair frame),
// the question cut to kMaxQueryTokens, the context split into windows that overlap by
// min(kDocStride, half the room) tokens, so a long context is read whole. The context is encoded
// word by word (" " + word, as token classification), which ties every context token to a
// whitespace word: a predicted span maps back to the words' bytes in the context.
// Gold spans: the first token of the word holding the answer's first byte to the last token of
// the word holding its last byte; a window without the whole answer, and an unanswerable
// question, point at 0 ([CLS]), as HF trains them.
#pragma once
#include <vector>

#include "io/batching.h"

namespace moekit::io {

constexpr int kMaxQueryTokens = 64;  // run_qa's max_query_length
constexpr int kDocStride = 128;      // run_qa's doc_stride (the windows' overlap)

std::vector<EncodedExample> encode_qa_features(const Tokenizer& tokenizer, const std::vector<Example>& examples,
                                               int max_len);

}  // namespace moekit::io
