#include "serve/token_answer.h"

#include "distill/entity_metrics.h"
#include "io/prediction.h"

namespace moekit::serve {

namespace {

// Code points in text[0, byte): every byte that is not a UTF-8 continuation byte starts one.
int64_t code_points_before(const std::string& text, size_t byte) {
  int64_t n = 0;
  for (size_t i = 0; i < byte && i < text.size(); ++i) n += (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
  return n;
}

}  // namespace

nlohmann::json token_answer(const BertConfig& config, const std::string& text, const std::vector<io::WordSpan>& words,
                            const std::vector<int32_t>& word_starts, MatRef token_logits) {
  std::vector<std::string> names;
  for (const io::WordSpan& w : words) names.push_back(w.text);
  nlohmann::json out = io::token_prediction_json(config, names, word_starts, token_logits);
  std::vector<std::string> tags;
  for (const auto& t : out["tags"]) tags.push_back(t.is_string() ? t.get<std::string>() : "O");
  nlohmann::json entities = nlohmann::json::array();
  for (const distill::Entity& e : distill::iob2_entities(tags)) {
    double score = 0;
    for (int64_t w = e.begin; w < e.end; ++w) score += out["scores"][static_cast<size_t>(w)].get<double>();
    const size_t begin = words[static_cast<size_t>(e.begin)].begin, end = words[static_cast<size_t>(e.end - 1)].end;
    entities.push_back({{"entity_group", e.type},
                        {"score", score / static_cast<double>(e.end - e.begin)},
                        {"word", text.substr(begin, end - begin)},
                        {"start", code_points_before(text, begin)},
                        {"end", code_points_before(text, end)}});
  }
  out["entities"] = std::move(entities);
  return out;
}

}  // namespace moekit::serve
