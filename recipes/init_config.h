// The HF config.json that a train step's inline `init: {hidden: 256, layers: 4, heads: 4,
// ffn: 1024}` stands for (DESIGN 6): the runner writes it and runs `moekit init` on it.
#pragma once
#include <string>

#include "recipes/recipe.h"

namespace moekit::recipes {

struct InitConfig {
  std::string json_text;   // config.json contents
  std::string seed = "0";  // `moekit init --seed`
};

// Keys: hidden, layers, heads, ffn, positions (default `positions`), act, dropout, seed, task
// (the HF problem_type: regression, multi_label_classification, single_label_classification).
// Throws Error at the key's line for unknown keys (with did-you-mean) and non-numbers.
InitConfig init_config(const Value& init, int positions);

}  // namespace moekit::recipes
