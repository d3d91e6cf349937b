// Seeded tiny BERT configurations and batches for tests.
#pragma once
#include "model/batch.h"
#include "model/bert.h"
#include "model/config.h"

namespace moekit::test {

// vocab 40, hidden 16, 2 layers, 4 heads, ffn 32, 3 labels, gelu.
BertConfig tiny_config(Activation act = Activation::gelu);
// The same sizes as a DistilBERT (model_type distilbert, no token types).
BertConfig tiny_distilbert_config(Activation act = Activation::gelu);

// Weights N(0, scale) (larger than HF's 0.02 so every path carries signal), LayerNorms near 1.
void randomize(BertModel& model, uint64_t seed, double scale = 0.3);

// `lengths.size()` sequences padded to the longest; ids seeded, [CLS]=2 first; labels seeded.
Batch tiny_batch(const BertConfig& config, const std::vector<int64_t>& lengths, uint64_t seed);

}  // namespace moekit::test
