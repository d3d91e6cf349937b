#include "distill/entity_metrics.h"

#include <algorithm>

#include "model/error.h"

namespace moekit::distill {

std::vector<Entity> iob2_entities(const std::vector<std::string>& tags) {
  std::vector<Entity> out;
  bool open = false;
  auto close = [&](int64_t at) {
    if (open) out.back().end = at;
    open = false;
  };
  for (size_t i = 0; i < tags.size(); ++i) {
    const std::string& t = tags[i];
    const bool tagged = t.size() > 2 && t[1] == '-' && (t[0] == 'B' || t[0] == 'I');
    const std::string type = tagged ? t.substr(2) : "";
    if (tagged && t[0] == 'I' && open && out.back().type == type) continue;  // the entity goes on
    close(static_cast<int64_t>(i));
    if (tagged && t[0] == 'B') {
      out.push_back({type, static_cast<int64_t>(i), 0});
      open = true;
    }
  }
  close(static_cast<int64_t>(tags.size()));
  return out;
}

EntityMetrics entity_metrics(const std::vector<std::vector<std::string>>& predicted,
                             const std::vector<std::vector<std::string>>& gold) {
  if (predicted.size() != gold.size()) fail("", "entity metrics: predictions and gold differ in sentence count");
  EntityMetrics m;
  int64_t same = 0;
  for (size_t s = 0; s < gold.size(); ++s) {
    if (predicted[s].size() != gold[s].size())
      fail("", "entity metrics: sentence " + std::to_string(s) + " has " + std::to_string(predicted[s].size()) +
                   " predicted tags for " + std::to_string(gold[s].size()) + " words");
    for (size_t w = 0; w < gold[s].size(); ++w) same += predicted[s][w] == gold[s][w];
    m.words += static_cast<int64_t>(gold[s].size());
    const std::vector<Entity> p = iob2_entities(predicted[s]), g = iob2_entities(gold[s]);
    m.predicted_entities += static_cast<int64_t>(p.size());
    m.gold_entities += static_cast<int64_t>(g.size());
    for (const Entity& e : p) m.correct_entities += std::find(g.begin(), g.end(), e) != g.end();
  }
  auto ratio = [](int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; };
  m.precision = ratio(m.correct_entities, m.predicted_entities);
  m.recall = ratio(m.correct_entities, m.gold_entities);
  m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0;
  m.token_accuracy = ratio(same, m.words);
  return m;
}

}  // namespace moekit::distill
