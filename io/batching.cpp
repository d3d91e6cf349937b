#include "io/batching.h"

#include <algorithm>
#include <numeric>

namespace moekit::io {

std::vector<EncodedExample> encode_examples(const Tokenizer& tokenizer, const std::vector<Example>& examples,
                                            int max_len) {
  std::vector<EncodedExample> out(examples.size());
#pragma omp parallel for schedule(dynamic, 64)
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& e = examples[i];
    auto enc = tokenizer.encode(e.text, e.has_pair ? &e.text_pair : nullptr, max_len);
    out[i].ids = std::move(enc.ids);
    out[i].type_ids = std::move(enc.type_ids);
    out[i].label = e.label;
    out[i].targets = e.targets;
  }
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
  bool labelled = true, has_targets = true;
  for (size_t k = 0; k < indices.size(); ++k) {
    const EncodedExample& e = examples[indices[k]];
    const size_t row = k * static_cast<size_t>(b.seq);
    std::copy(e.ids.begin(), e.ids.end(), b.ids.begin() + static_cast<std::ptrdiff_t>(row));
    std::copy(e.type_ids.begin(), e.type_ids.end(), b.type_ids.begin() + static_cast<std::ptrdiff_t>(row));
    std::fill_n(b.mask.begin() + static_cast<std::ptrdiff_t>(row), e.ids.size(), 1);
    labelled = labelled && e.label >= 0;
    has_targets = has_targets && !e.targets.empty();
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

}  // namespace moekit::io
