// Which examples form each micro-batch of an epoch: seeded shuffle, then length grouping inside
// windows of 50 batches (little padding, still random), then the batch order shuffled.
// A pure function of (examples' lengths, batch size, seed, epoch), so a resumed run only needs
// the epoch and the position in it.
#pragma once
#include <cstdint>
#include <vector>

#include "io/batching.h"

namespace moekit::distill {

std::vector<std::vector<size_t>> epoch_batches(const std::vector<io::EncodedExample>& examples, size_t batch_size,
                                               uint64_t seed, int64_t epoch);

}  // namespace moekit::distill
