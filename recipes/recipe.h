// A recipe file as a tree of values that remember their line (yaml-cpp marks), with `vars`
// substituted and `--set` overrides applied. Knows no commands: plan.h checks steps against the CLI.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace moekit::recipes {

namespace fs = std::filesystem;

// Where a value came from, for messages: "recipe.yaml:12" or "--set train.epochs".
using Loc = std::string;

struct Entry;

struct Value {
  enum class Kind { kNull, kScalar, kList, kMap };
  Kind kind = Kind::kNull;
  std::string text;            // kScalar
  std::vector<Value> items;    // kList
  std::vector<Entry> entries;  // kMap, in file order
  Loc loc;

  bool is_map() const { return kind == Kind::kMap; }
  const Value* find(const std::string& key) const;  // kMap only; nullptr when absent
  Value* find(const std::string& key);
  // "a scalar", "a list", "a map", "empty" (for "expected X, got Y").
  std::string kind_name() const;
};

struct Entry {
  std::string key;
  Value value;
  Loc loc;  // of the key
};

struct StepSpec {
  std::string kind;  // "train", "eval", ... as written
  std::string name;  // `name:`, else `out:`, else the kind; unique ("eval-2")
  Value options;     // kMap (kNull for `- report`)
  Loc loc;
};

struct Recipe {
  fs::path file;  // as given, for messages
  fs::path dir;   // its folder: data and script paths are relative to it
  Value root;     // the whole map, substituted
  std::vector<StepSpec> steps;
};

// Top-level keys of a recipe, for checks and did-you-mean.
const std::vector<std::string>& top_level_keys();

// Parses, checks the top-level layout, substitutes ${var}, applies --set KEY=VALUE overrides
// (KEY: a var, workdir/name/vocab, data.NAME, or STEP.OPTION[.SUB] with STEP a step's name,
// kind or 1-based index). Throws Error("file:line", what) on the first problem.
Recipe load_recipe(const fs::path& file, const std::vector<std::string>& sets = {});

// " (did you mean \"x\"?)" for the closest candidate within a small edit distance, else "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);
size_t edit_distance(const std::string& a, const std::string& b);

// Keys are CLI option names without dashes; batch_size and batch-size are the same key.
std::string normalize_key(const std::string& key);

}  // namespace moekit::recipes
