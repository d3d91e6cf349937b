#include "distill/data_plan.h"

#include <algorithm>
#include <numeric>

#include "model/rng.h"

namespace moekit::distill {

namespace {
template <class T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}
}  // namespace

std::vector<std::vector<size_t>> epoch_batches(const std::vector<io::EncodedExample>& examples, size_t batch_size,
                                               uint64_t seed, int64_t epoch) {
  Rng rng(seed * 1000003ULL + static_cast<uint64_t>(epoch) + 1);
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  shuffle(order, rng);
  const size_t window = batch_size * 50;
  std::vector<std::vector<size_t>> batches;
  for (size_t w = 0; w < order.size(); w += window) {
    auto begin = order.begin() + static_cast<std::ptrdiff_t>(w);
    auto end = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), w + window));
    std::stable_sort(begin, end, [&](size_t a, size_t b) { return examples[a].ids.size() < examples[b].ids.size(); });
    for (auto it = begin; it < end; it += static_cast<std::ptrdiff_t>(std::min<size_t>(batch_size, static_cast<size_t>(end - it))))
      batches.emplace_back(it, it + static_cast<std::ptrdiff_t>(std::min<size_t>(batch_size, static_cast<size_t>(end - it))));
  }
  shuffle(batches, rng);
  return batches;
}

}  // namespace moekit::distill
