#include "recipes/init_config.h"

#include <map>
#include <nlohmann/json.hpp>

#include "model/error.h"

namespace moekit::recipes {

InitConfig init_config(const Value& init, int positions) {
  if (!init.is_map()) fail(init.loc, "init: expected a map such as {hidden: 256, layers: 4, heads: 4, ffn: 1024}");
  static const std::map<std::string, std::string> kFields{{"hidden", "hidden_size"},
                                                          {"layers", "num_hidden_layers"},
                                                          {"heads", "num_attention_heads"},
                                                          {"ffn", "intermediate_size"},
                                                          {"positions", "max_position_embeddings"},
                                                          {"act", "hidden_act"},
                                                          {"task", "problem_type"},
                                                          {"dropout", "hidden_dropout_prob"},
                                                          {"seed", ""}};
  nlohmann::json config = {{"max_position_embeddings", positions}};
  InitConfig result;
  for (const auto& e : init.entries) {
    auto it = kFields.find(e.key);
    if (it == kFields.end()) {
      std::vector<std::string> keys;
      for (const auto& kv : kFields) keys.push_back(kv.first);
      fail(e.loc, "unknown key \"" + e.key + "\" in init" + did_you_mean(e.key, keys));
    }
    if (e.value.kind != Value::Kind::kScalar)
      fail(e.value.loc, "init." + e.key + ": expected a value, got a " + e.value.kind_name());
    const std::string& text = e.value.text;
    if (e.key == "act" || e.key == "task") {
      config[it->second] = text;
      continue;
    }
    size_t used = 0;
    double number = 0;
    try {
      number = std::stod(text, &used);
    } catch (const std::exception&) {
      // `used` stays 0: reported just below
    }
    const bool integer = e.key != "dropout";
    if (used != text.size() || text.empty() || (integer && (number != static_cast<int64_t>(number) || number < 0)))
      fail(e.value.loc, "init." + e.key + ": expected " + (integer ? "a non-negative integer" : "a number") +
                            ", got \"" + text + "\"");
    if (e.key == "seed") {
      result.seed = text;
    } else if (e.key == "dropout") {
      config["hidden_dropout_prob"] = number;
      config["attention_probs_dropout_prob"] = number;
    } else {
      config[it->second] = static_cast<int64_t>(number);
    }
  }
  result.json_text = config.dump(2) + "\n";
  return result;
}

}  // namespace moekit::recipes
