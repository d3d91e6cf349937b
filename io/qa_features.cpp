#include "io/qa_features.h"

#include <algorithm>
#include <exception>

#include "model/error.h"

namespace moekit::io {

namespace {

// The special tokens around a pair (prefix A middle B suffix: [CLS] A [SEP] B [SEP], <s> A </s></s>
// B </s>) and the type ids of A's and B's tokens, read off the encoding of a probe pair.
struct PairFrame {
  std::vector<int32_t> prefix, middle, suffix, prefix_types, middle_types, suffix_types;
  int32_t first_type = 0, second_type = 0;
};

PairFrame pair_frame(const Tokenizer& tokenizer) {
  const std::string b = "b";
  const Encoding enc = tokenizer.encode("a", &b, 1 << 16);
  std::vector<std::pair<size_t, size_t>> runs;  // [begin, end) of each run of non-special tokens
  for (size_t i = 0; i < enc.ids.size(); ++i) {
    if (enc.special[i]) continue;
    if (runs.empty() || runs.back().second != i) runs.push_back({i, i});
    runs.back().second = i + 1;
  }
  if (runs.size() != 2) fail("", "the tokenizer does not frame a question and context pair as two segments");
  auto slice = [&](const std::vector<int32_t>& v, size_t from, size_t to) {
    return std::vector<int32_t>(v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(to));
  };
  PairFrame f;
  f.prefix = slice(enc.ids, 0, runs[0].first);
  f.prefix_types = slice(enc.type_ids, 0, runs[0].first);
  f.middle = slice(enc.ids, runs[0].second, runs[1].first);
  f.middle_types = slice(enc.type_ids, runs[0].second, runs[1].first);
  f.suffix = slice(enc.ids, runs[1].second, enc.ids.size());
  f.suffix_types = slice(enc.type_ids, runs[1].second, enc.ids.size());
  f.first_type = enc.type_ids[runs[0].first];
  f.second_type = enc.type_ids[runs[1].first];
  return f;
}

void append(std::vector<int32_t>& to, const std::vector<int32_t>& from) { to.insert(to.end(), from.begin(), from.end()); }

std::vector<EncodedExample> features_of(const Tokenizer& tokenizer, const PairFrame& f, const Example& e,
                                        size_t index, int max_len) {
  auto ctx = std::make_shared<QaContext>();
  ctx->id = e.qa_id;
  ctx->context = e.text_pair;
  ctx->words = split_words(e.text_pair);
  ctx->labelled = e.qa_labelled;
  for (const Example::Answer& a : e.answers) ctx->gold.push_back(a.text);

  std::vector<int32_t> question = tokenizer.encode_plain(e.text).ids;
  if (question.size() > static_cast<size_t>(kMaxQueryTokens)) question.resize(kMaxQueryTokens);
  std::vector<int32_t> context_ids, context_word;
  std::vector<int64_t> first(ctx->words.size(), -1), last(ctx->words.size(), -1);
  for (size_t w = 0; w < ctx->words.size(); ++w) {
    const Encoding piece = tokenizer.encode_plain(" " + ctx->words[w].text);
    if (piece.ids.empty()) continue;
    first[w] = static_cast<int64_t>(context_ids.size());
    append(context_ids, piece.ids);
    context_word.insert(context_word.end(), piece.ids.size(), static_cast<int32_t>(w));
    last[w] = static_cast<int64_t>(context_ids.size()) - 1;
  }
  const size_t head = f.prefix.size() + question.size() + f.middle.size();
  const int64_t room = static_cast<int64_t>(max_len) - static_cast<int64_t>(head + f.suffix.size());
  if (room < 1)
    fail("", "max length " + std::to_string(max_len) + " leaves no room for the context after a question of " +
                 std::to_string(question.size()) + " tokens");
  // The gold span in context tokens (first answer; SQuAD's training set has one), -1 = none.
  int64_t gold_start = -1, gold_end = -1;
  if (!e.answers.empty()) {
    const size_t begin = e.answers[0].begin, end = begin + e.answers[0].text.size();
    for (size_t w = 0; w < ctx->words.size(); ++w) {
      if (ctx->words[w].end > begin && ctx->words[w].begin < end) {
        if (gold_start < 0 && first[w] >= 0) gold_start = first[w];
        if (last[w] >= 0) gold_end = last[w];
      }
    }
    if (gold_start < 0 || gold_end < gold_start) gold_start = gold_end = -1;  // only characters with no token
  }
  const int64_t n = static_cast<int64_t>(context_ids.size());
  const int64_t overlap = std::min<int64_t>(kDocStride, room / 2), step = std::max<int64_t>(1, room - overlap);
  std::vector<EncodedExample> out;
  for (int64_t from = 0;; from += step) {
    const int64_t to = std::min(n, from + room);
    EncodedExample x;
    x.qa = ctx;
    x.qa_example = static_cast<int64_t>(index);
    x.ids = f.prefix;
    x.type_ids = f.prefix_types;
    append(x.ids, question);
    x.type_ids.insert(x.type_ids.end(), question.size(), f.first_type);
    append(x.ids, f.middle);
    append(x.type_ids, f.middle_types);
    x.token_word.assign(x.ids.size(), -1);
    x.ids.insert(x.ids.end(), context_ids.begin() + from, context_ids.begin() + to);
    x.type_ids.insert(x.type_ids.end(), static_cast<size_t>(to - from), f.second_type);
    x.token_word.insert(x.token_word.end(), context_word.begin() + from, context_word.begin() + to);
    append(x.ids, f.suffix);
    append(x.type_ids, f.suffix_types);
    x.token_word.resize(x.ids.size(), -1);
    if (e.qa_labelled) {
      const bool inside = gold_start >= from && gold_end < to;
      x.start_position = inside ? static_cast<int>(static_cast<int64_t>(head) + gold_start - from) : 0;
      x.end_position = inside ? static_cast<int>(static_cast<int64_t>(head) + gold_end - from) : 0;
    }
    out.push_back(std::move(x));
    if (to >= n) break;
  }
  return out;
}

}  // namespace

std::vector<EncodedExample> encode_qa_features(const Tokenizer& tokenizer, const std::vector<Example>& examples,
                                               int max_len) {
  const PairFrame frame = pair_frame(tokenizer);
  std::vector<std::vector<EncodedExample>> per_example(examples.size());
  std::exception_ptr error;  // an exception must not leave an OpenMP region (it would abort)
#pragma omp parallel for schedule(dynamic, 16)
  for (size_t i = 0; i < examples.size(); ++i) {
    try {
      per_example[i] = features_of(tokenizer, frame, examples[i], i, max_len);
    } catch (...) {
#pragma omp critical(moekit_qa_features_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  std::vector<EncodedExample> out;
  for (auto& f : per_example) std::move(f.begin(), f.end(), std::back_inserter(out));
  return out;
}

}  // namespace moekit::io
