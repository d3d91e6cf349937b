// Token-classification metrics: entity precision, recall and F1 as seqeval computes them in strict
// IOB2 mode (mode="strict", scheme=IOB2), plus accuracy over word tags.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moekit::distill {

// An entity of one sentence: its type and word range [begin, end).
struct Entity {
  std::string type;
  int64_t begin = 0, end = 0;
  bool operator==(const Entity& o) const { return type == o.type && begin == o.begin && end == o.end; }
};

// Strict IOB2 chunks: an entity is B-T followed by any number of I-T. An I-T that does not continue
// a B-T/I-T of the same type belongs to no entity (seqeval's strict mode drops it; the lenient
// conlleval rule would open an entity there). "O" and tags of no IOB2 form end an entity.
std::vector<Entity> iob2_entities(const std::vector<std::string>& tags);

struct EntityMetrics {
  double precision = 0, recall = 0, f1 = 0;  // micro over entities; 0 when undefined (as seqeval)
  double token_accuracy = 0;                 // words whose predicted tag equals the gold tag
  int64_t gold_entities = 0, predicted_entities = 0, correct_entities = 0, words = 0;
};
// predicted[i] and gold[i]: the tags of sentence i, equally long. Error when they are not.
EntityMetrics entity_metrics(const std::vector<std::vector<std::string>>& predicted,
                             const std::vector<std::vector<std::string>>& gold);

}  // namespace moekit::distill
