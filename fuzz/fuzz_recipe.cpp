// libFuzzer target: recipe YAML (recipes::load_recipe): parsing, aliases, keys, --set overrides.
#include "fuzz/fuzz_util.h"
#include "recipes/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = moekit::fuzz::input_file(data, size, "recipe.yaml");
  moekit::fuzz::expect_error_or_success([&] { moekit::recipes::load_recipe(path, {"epochs=2", "train.lr=1e-3"}); });
  return 0;
}
