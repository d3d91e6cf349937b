#include "tests/support/tiny_model.h"

#include <algorithm>

namespace moekit::test {

BertConfig tiny_config(Activation act) {
  BertConfig c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 32;
  c.hidden_act = act;
  c.max_position_embeddings = 24;
  c.type_vocab_size = 2;
  c.labels = {"a", "b", "c"};
  return c;
}

BertConfig tiny_distilbert_config(Activation act) {
  BertConfig c = tiny_config(act);
  c.model_type = "distilbert";
  c.type_vocab_size = 0;
  return c;
}

void randomize(BertModel& model, uint64_t seed, double scale) {
  Rng rng(seed);
  for (Param* p : model.params()) {
    const bool is_norm_weight = is_layer_norm_weight(p->name);
    for (Eigen::Index i = 0; i < p->value.size(); ++i) {
      const double r = rng.normal();
      p->value.data()[i] = static_cast<float>(is_norm_weight ? 1.0 + 0.1 * r : scale * r);
    }
  }
}

Batch tiny_batch(const BertConfig& c, const std::vector<int64_t>& lengths, uint64_t seed) {
  Rng rng(seed);
  Batch b;
  b.batch = static_cast<int64_t>(lengths.size());
  b.seq = *std::max_element(lengths.begin(), lengths.end());
  const size_t n = static_cast<size_t>(b.n_tok());
  b.ids.assign(n, static_cast<int32_t>(c.pad_token_id));
  b.type_ids.assign(n, 0);
  b.mask.assign(n, 0);
  for (int64_t s = 0; s < b.batch; ++s) {
    for (int64_t t = 0; t < lengths[static_cast<size_t>(s)]; ++t) {
      const size_t i = static_cast<size_t>(s * b.seq + t);
      b.ids[i] = t == 0 ? 2 : static_cast<int32_t>(5 + rng.below(static_cast<uint64_t>(c.vocab_size - 5)));
      b.type_ids[i] = t > lengths[static_cast<size_t>(s)] / 2 ? 1 : 0;
      b.mask[i] = 1;
    }
    b.labels.push_back(static_cast<int>(rng.below(static_cast<uint64_t>(c.num_labels()))));
  }
  return b;
}

}  // namespace moekit::test
