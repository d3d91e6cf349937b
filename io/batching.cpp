#include "io/batching.h"

#include <algorithm>
#include <exception>
#include <numeric>

#include "io/qa_features.h"
#include "model/error.h"

namespace moekit::io {

namespace {

// The special tokens a tokenizer puts before and after one sequence ([CLS] ... [SEP], <s> ... </s>),
// read off the encoding of a one-word probe.
struct SequenceFrame {
  std::vector<int32_t> prefix, suffix;
  std::vector<int32_t> prefix_types, suffix_types;
  int32_t content_type = 0;
};

SequenceFrame sequence_frame(const Tokenizer& tokenizer) {
  const Encoding enc = tokenizer.encode("a", nullptr, 1 << 16);
  size_t first = enc.ids.size(), last = 0;
  for (size_t i = 0; i < enc.ids.size(); ++i)
    if (!enc.special[i]) first = std::min(first, i), last = i + 1;
  SequenceFrame f;
  if (first == enc.ids.size()) first = last = enc.ids.size();  // nothing but specials: all in front
  f.prefix.assign(enc.ids.begin(), enc.ids.begin() + static_cast<std::ptrdiff_t>(first));
  f.prefix_types.assign(enc.type_ids.begin(), enc.type_ids.begin() + static_cast<std::ptrdiff_t>(first));
  f.suffix.assign(enc.ids.begin() + static_cast<std::ptrdiff_t>(last), enc.ids.end());
  f.suffix_types.assign(enc.type_ids.begin() + static_cast<std::ptrdiff_t>(last), enc.type_ids.end());
  if (first < last) f.content_type = enc.type_ids[first];
  return f;
}

void encode_words(const Tokenizer& tokenizer, const SequenceFrame& frame, const Example& e, int max_len,
                  EncodedExample& out) {
  const size_t room = static_cast<size_t>(max_len) - std::min<size_t>(static_cast<size_t>(max_len),
                                                                      frame.prefix.size() + frame.suffix.size());
  out.ids = frame.prefix;
  out.type_ids = frame.prefix_types;
  const bool labelled = !e.word_tags.empty();
  if (labelled) out.token_labels.assign(frame.prefix.size(), Batch::kIgnoreToken);
  out.word_starts.assign(e.words.size(), -1);
  for (size_t w = 0; w < e.words.size(); ++w) {
    const Encoding piece = tokenizer.encode_plain(" " + e.words[w]);
    if (piece.ids.empty()) continue;  // e.g. only control characters: no token, no prediction
    if (out.ids.size() - frame.prefix.size() + piece.ids.size() > room) break;
    out.word_starts[w] = static_cast<int32_t>(out.ids.size());
    out.ids.insert(out.ids.end(), piece.ids.begin(), piece.ids.end());
    out.type_ids.insert(out.type_ids.end(), piece.ids.size(), frame.content_type);
    if (labelled) {
      out.token_labels.push_back(e.word_tags[w]);
      out.token_labels.insert(out.token_labels.end(), piece.ids.size() - 1, Batch::kIgnoreToken);
    }
  }
  out.ids.insert(out.ids.end(), frame.suffix.begin(), frame.suffix.end());
  out.type_ids.insert(out.type_ids.end(), frame.suffix_types.begin(), frame.suffix_types.end());
  if (labelled) out.token_labels.insert(out.token_labels.end(), frame.suffix.size(), Batch::kIgnoreToken);
  out.words = e.words;
  out.word_tags = e.word_tags;
}

}  // namespace

std::vector<EncodedExample> encode_examples(const Tokenizer& tokenizer, const std::vector<Example>& examples,
                                            int max_len) {
  if (!examples.empty() && examples.front().qa) return encode_qa_features(tokenizer, examples, max_len);
  std::vector<EncodedExample> out(examples.size());
  const bool words = std::any_of(examples.begin(), examples.end(), [](const Example& e) { return !e.words.empty(); });
  const SequenceFrame frame = words ? sequence_frame(tokenizer) : SequenceFrame{};
  if (words && frame.prefix.size() + frame.suffix.size() >= static_cast<size_t>(max_len))
    fail("", "max length " + std::to_string(max_len) + " leaves no room for words between the special tokens");
  std::exception_ptr error;  // an exception must not leave an OpenMP region (it would abort)
#pragma omp parallel for schedule(dynamic, 64)
  for (size_t i = 0; i < examples.size(); ++i) {
    try {
      const Example& e = examples[i];
      if (!e.words.empty()) {
        encode_words(tokenizer, frame, e, max_len, out[i]);
        continue;
      }
      auto enc = tokenizer.encode(e.text, e.has_pair ? &e.text_pair : nullptr, max_len);
      out[i].ids = std::move(enc.ids);
      out[i].type_ids = std::move(enc.type_ids);
      out[i].label = e.label;
      out[i].targets = e.targets;
    } catch (...) {
#pragma omp critical(moekit_encode_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return out;
}

Batch make_batch(const std::vector<EncodedExample>& examples, const std::vector<size_t>& indices, int32_t pad_id) {
  Batch b;
  b.batch = static_cast<int64_t>(indices.size());
  for (size_t i : indices) b.seq = std::max<int64_t>(b.seq, static_cast<int64_t>(examples[i].ids.size()));
  const size_t n = static_cast<size_t>(b.n_tok());
  b.ids.assign(n, pad_id);
  b.type_ids.assign(n, 0);
  b.mask.assign(n, 0);
  bool labelled = true, has_targets = true, has_tags = true, has_spans = true;
  for (size_t k = 0; k < indices.size(); ++k) {
    const EncodedExample& e = examples[indices[k]];
    const size_t row = k * static_cast<size_t>(b.seq);
    std::copy(e.ids.begin(), e.ids.end(), b.ids.begin() + static_cast<std::ptrdiff_t>(row));
    std::copy(e.type_ids.begin(), e.type_ids.end(), b.type_ids.begin() + static_cast<std::ptrdiff_t>(row));
    std::fill_n(b.mask.begin() + static_cast<std::ptrdiff_t>(row), e.ids.size(), 1);
    labelled = labelled && e.label >= 0;
    has_targets = has_targets && !e.targets.empty();
    has_tags = has_tags && !e.token_labels.empty();
    has_spans = has_spans && e.start_position >= 0;
  }
  if (has_spans)
    for (size_t i : indices) {
      b.start_positions.push_back(examples[i].start_position);
      b.end_positions.push_back(examples[i].end_position);
    }
  if (has_tags) {
    b.token_labels.assign(n, Batch::kIgnoreToken);
    for (size_t k = 0; k < indices.size(); ++k) {
      const EncodedExample& e = examples[indices[k]];
      std::copy(e.token_labels.begin(), e.token_labels.end(),
                b.token_labels.begin() + static_cast<std::ptrdiff_t>(k * static_cast<size_t>(b.seq)));
    }
  }
  if (labelled)
    for (size_t i : indices) b.labels.push_back(examples[i].label);
  if (has_targets)
    for (size_t i : indices) b.targets.insert(b.targets.end(), examples[i].targets.begin(), examples[i].targets.end());
  return b;
}

std::vector<std::vector<size_t>> length_grouped_batches(const std::vector<EncodedExample>& examples,
                                                        size_t batch_size) {
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return examples[a].ids.size() < examples[b].ids.size(); });
  std::vector<std::vector<size_t>> batches;
  for (size_t i = 0; i < order.size(); i += batch_size)
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                         order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + batch_size)));
  return batches;
}

std::string describe_count(const std::vector<EncodedExample>& examples) {
  if (examples.empty() || !examples.front().qa) return std::to_string(examples.size()) + " examples";
  size_t questions = 0;  // a question's windows are adjacent
  for (size_t i = 0; i < examples.size(); ++i)
    if (i == 0 || examples[i].qa_example != examples[i - 1].qa_example) ++questions;
  return std::to_string(examples.size()) + " windows of " + std::to_string(questions) +
         (questions == 1 ? " question" : " questions");
}

}  // namespace moekit::io
