#include "recipes/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>

#include "model/error.h"

namespace moekit::recipes {

namespace {

Loc loc_of(const fs::path& file, const YAML::Mark& mark) {
  return mark.is_null() ? file.string() : file.string() + ":" + std::to_string(mark.line + 1);
}

// yaml-cpp shares an aliased node rather than copying it, but converting walks every use, so
// nested aliases ("billion laughs": 9 levels of 9) would expand exponentially. Real recipes have a
// few hundred nodes; the budget stops a hostile one after a bounded amount of work and memory.
constexpr size_t kMaxRecipeNodes = 100'000;
constexpr uintmax_t kMaxRecipeBytes = 1 << 20;
// Nesting bound: a recipe is a few levels deep, and an alias inside its own anchor (`a: &a [*a]`)
// makes yaml-cpp's node graph a cycle, which would otherwise recurse until the stack overflows.
constexpr int kMaxRecipeDepth = 64;

Value convert(const YAML::Node& node, const fs::path& file, size_t& budget, int depth = 0) {
  Value v;
  v.loc = loc_of(file, node.Mark());
  if (budget == 0)
    fail(v.loc, "more than " + std::to_string(kMaxRecipeNodes) +
                    " YAML nodes once aliases are expanded (nested aliases?); a recipe needs far fewer");
  if (depth > kMaxRecipeDepth)
    fail(v.loc, "YAML nested more than " + std::to_string(kMaxRecipeDepth) +
                    " levels deep (an alias inside its own anchor?); a recipe needs a few");
  --budget;
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      v.kind = Value::Kind::kScalar;
      v.text = node.Scalar();
      break;
    case YAML::NodeType::Sequence:
      v.kind = Value::Kind::kList;
      for (const auto& item : node) v.items.push_back(convert(item, file, budget, depth + 1));
      break;
    case YAML::NodeType::Map:
      v.kind = Value::Kind::kMap;
      for (const auto& kv : node) {
        Entry e{kv.first.Scalar(), convert(kv.second, file, budget, depth + 1), loc_of(file, kv.first.Mark())};
        if (kv.first.Type() != YAML::NodeType::Scalar)
          fail(e.loc, "expected a plain key, got a " + e.value.kind_name());
        if (v.find(e.key)) fail(e.loc, "duplicate key \"" + e.key + "\"");
        // A null value ("epochs:") keeps the key's line.
        if (e.value.kind == Value::Kind::kNull) e.value.loc = e.loc;
        v.entries.push_back(std::move(e));
      }
      break;
    default:
      break;
  }
  return v;
}

Value parse_set_value(const std::string& text, const Loc& loc) {
  try {
    size_t budget = kMaxRecipeNodes;
    Value v = convert(YAML::Load(text), loc, budget);
    if (v.kind == Value::Kind::kNull) v.kind = Value::Kind::kScalar;  // --set x= sets the empty string
    std::vector<Value*> todo{&v};
    while (!todo.empty()) {  // every part of an override is located at the --set itself
      Value* cur = todo.back();
      todo.pop_back();
      cur->loc = loc;
      for (auto& i : cur->items) todo.push_back(&i);
      for (auto& e : cur->entries) {
        e.loc = loc;
        todo.push_back(&e.value);
      }
    }
    return v;
  } catch (const YAML::Exception& e) {
    fail(loc, "cannot parse the value: " + e.msg);
  }
}

// Replaces ${name} in every scalar under v (recursively).
void substitute(Value& v, const std::map<std::string, std::string>& vars) {
  if (v.kind == Value::Kind::kScalar) {
    std::string out;
    size_t pos = 0;
    for (size_t at; (at = v.text.find("${", pos)) != std::string::npos;) {
      const size_t end = v.text.find('}', at);
      if (end == std::string::npos) fail(v.loc, "unterminated ${ in \"" + v.text + "\"");
      const std::string name = v.text.substr(at + 2, end - at - 2);
      auto it = vars.find(name);
      if (it == vars.end()) {
        std::vector<std::string> names;
        for (const auto& kv : vars) names.push_back(kv.first);
        fail(v.loc, "unknown variable ${" + name + "}" + did_you_mean(name, names) + "; hint: define it under vars:");
      }
      out += v.text.substr(pos, at - pos) + it->second;
      pos = end + 1;
    }
    v.text = out + v.text.substr(pos);
  }
  for (auto& i : v.items) substitute(i, vars);
  for (auto& e : v.entries) substitute(e.value, vars);
}

void set_entry(Value& map, const std::string& key, Value value, const Loc& loc) {
  if (!map.is_map()) {
    map.kind = Value::Kind::kMap;
    map.loc = loc;
  }
  for (auto& e : map.entries)
    if (normalize_key(e.key) == normalize_key(key)) {
      e.value = std::move(value);
      return;
    }
  map.entries.push_back(Entry{key, std::move(value), loc});
}

void name_steps(std::vector<StepSpec>& steps) {
  std::map<std::string, int> seen;
  for (auto& s : steps) {
    const Value* name = s.options.is_map() ? s.options.find("name") : nullptr;
    const Value* out = s.options.is_map() ? s.options.find("out") : nullptr;
    if (name && name->kind == Value::Kind::kScalar)
      s.name = name->text;
    else if (out && out->kind == Value::Kind::kScalar)
      s.name = fs::path(out->text).stem().string();  // "moe-int8.h5" -> moe-int8
    else
      s.name = s.kind;
    if (int n = ++seen[s.name]; n > 1) s.name += "-" + std::to_string(n);
  }
}

StepSpec* find_step(std::vector<StepSpec>& steps, const std::string& sel, const Loc& loc) {
  std::vector<StepSpec*> hits;
  for (auto& s : steps)
    if (s.name == sel) return &s;
  for (auto& s : steps)
    if (s.kind == sel) hits.push_back(&s);
  if (hits.size() == 1) return hits[0];
  if (hits.size() > 1) fail(loc, "several steps are \"" + sel + "\"; name one by its name or number");
  if (!sel.empty() && std::all_of(sel.begin(), sel.end(), ::isdigit)) {
    const size_t i = std::stoul(sel);
    if (i >= 1 && i <= steps.size()) return &steps[i - 1];
  }
  return nullptr;
}

}  // namespace

const Value* Value::find(const std::string& key) const {
  for (const auto& e : entries)
    if (normalize_key(e.key) == normalize_key(key)) return &e.value;
  return nullptr;
}

Value* Value::find(const std::string& key) { return const_cast<Value*>(std::as_const(*this).find(key)); }

std::string Value::kind_name() const {
  switch (kind) {
    case Kind::kScalar:
      return "scalar";
    case Kind::kList:
      return "list";
    case Kind::kMap:
      return "map";
    default:
      return "empty value";
  }
}

std::string normalize_key(const std::string& key) {
  std::string k = key;
  std::replace(k.begin(), k.end(), '_', '-');
  return k;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(normalize_key(word), normalize_key(c));
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  // Up to a third of the word may differ (2 edits at least): "epoch" -> "epochs", "trian" -> "train".
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_d > 0 && best_d <= limit ? " (did you mean \"" + best + "\"?)" : "";
}

const std::vector<std::string>& top_level_keys() {
  static const std::vector<std::string> keys{"name", "workdir", "data", "vocab", "vars", "prepare", "steps"};
  return keys;
}

Recipe load_recipe(const fs::path& file, const std::vector<std::string>& sets) {
  Recipe r;
  r.file = file;
  r.dir = fs::absolute(file).parent_path();
  if (!fs::is_regular_file(file)) fail(file, "no such recipe file");
  const uintmax_t bytes = fs::file_size(file);
  check(bytes <= kMaxRecipeBytes, file, "recipe of " + std::to_string(bytes) + " bytes is larger than moekit allows (" +
                                           std::to_string(kMaxRecipeBytes) + ")");
  try {
    size_t budget = kMaxRecipeNodes;
    r.root = convert(YAML::LoadFile(file.string()), file, budget);
  } catch (const YAML::Exception& e) {
    fail(loc_of(file, e.mark), e.msg);
  }
  if (!r.root.is_map())
    fail(r.root.loc, "a recipe is a map (name, workdir, data, steps, ...), got a " + r.root.kind_name());
  for (const auto& e : r.root.entries)
    if (std::find(top_level_keys().begin(), top_level_keys().end(), e.key) == top_level_keys().end())
      fail(e.loc, "unknown key \"" + e.key + "\"" + did_you_mean(e.key, top_level_keys()));
  for (const char* key : {"workdir", "steps"})
    if (!r.root.find(key)) fail(file, std::string("missing key \"") + key + "\"");

  // Split the overrides: plain names are vars or top-level keys, dotted ones data.X or STEP.KEY.
  struct Set {
    std::string key, value;
    Loc loc;
  };
  std::vector<Set> plain, dotted;
  for (const auto& s : sets) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) fail("--set " + s, "expected KEY=VALUE");
    Set set{s.substr(0, eq), s.substr(eq + 1), "--set " + s.substr(0, eq)};
    (set.key.find('.') == std::string::npos ? plain : dotted).push_back(set);
  }

  std::map<std::string, std::string> vars;
  Value* vars_node = r.root.find("vars");
  if (vars_node && vars_node->kind != Value::Kind::kNull && !vars_node->is_map())
    fail(vars_node->loc, "vars: expected a map of name: value, got a " + vars_node->kind_name());
  for (const auto& set : plain) {
    if (vars_node && vars_node->find(set.key)) {
      set_entry(*vars_node, set.key, parse_set_value(set.value, set.loc), set.loc);
    } else if (set.key == "workdir" || set.key == "name" || set.key == "vocab") {
      set_entry(r.root, set.key, parse_set_value(set.value, set.loc), set.loc);
    } else {
      std::vector<std::string> names{"workdir", "name", "vocab"};
      if (vars_node)
        for (const auto& e : vars_node->entries) names.push_back(e.key);
      fail(set.loc, "no variable \"" + set.key + "\"" + did_you_mean(set.key, names) +
                        "; hint: options are set as STEP.KEY=VALUE");
    }
  }
  if (vars_node)
    for (auto& e : vars_node->entries) {  // a var may use the vars above it
      substitute(e.value, vars);
      if (e.value.kind != Value::Kind::kScalar)
        fail(e.value.loc, "var \"" + e.key + "\": expected a scalar, got a " + e.value.kind_name());
      vars[e.key] = e.value.text;
    }
  for (auto& e : r.root.entries)
    if (e.key != "vars") substitute(e.value, vars);

  const Value& steps = *r.root.find("steps");
  if (steps.kind != Value::Kind::kList || steps.items.empty())
    fail(steps.loc, "steps: expected a list of steps (- train: {...}), got a " + steps.kind_name());
  for (const auto& item : steps.items) {
    StepSpec s;
    s.loc = item.loc;
    if (item.kind == Value::Kind::kScalar) {
      s.kind = item.text;  // "- report" with no options
    } else if (item.is_map() && item.entries.size() == 1) {
      s.kind = item.entries[0].key;
      s.options = item.entries[0].value;
      s.loc = item.entries[0].loc;
      if (s.options.kind != Value::Kind::kNull && !s.options.is_map())
        fail(s.options.loc, "step " + s.kind + ": expected a map of options, got a " + s.options.kind_name());
    } else {
      fail(item.loc, "a step is one kind with its options (- train: {epochs: 3}), got a " + item.kind_name() +
                         (item.is_map() ? " with " + std::to_string(item.entries.size()) +
                                              " keys; hint: indent the options under the kind"
                                        : ""));
    }
    r.steps.push_back(std::move(s));
  }
  name_steps(r.steps);

  for (const auto& set : dotted) {
    Value value = parse_set_value(set.value, set.loc);
    substitute(value, vars);
    const size_t dot = set.key.find('.');
    const std::string head = set.key.substr(0, dot), rest = set.key.substr(dot + 1);
    if (head == "data") {
      Value* data = r.root.find("data");
      if (!data) {
        r.root.entries.push_back(Entry{"data", Value{}, set.loc});
        data = &r.root.entries.back().value;
      }
      set_entry(*data, rest, std::move(value), set.loc);
      continue;
    }
    StepSpec* step = find_step(r.steps, head, set.loc);
    if (!step) {
      std::vector<std::string> names;
      for (const auto& s : r.steps) names.push_back(s.name);
      fail(set.loc, "no step \"" + head + "\"" + did_you_mean(head, names));
    }
    const size_t dot2 = rest.find('.');
    if (dot2 == std::string::npos) {
      set_entry(step->options, rest, std::move(value), set.loc);
    } else {  // train.init.hidden=128
      Value* sub = step->options.is_map() ? step->options.find(rest.substr(0, dot2)) : nullptr;
      if (!sub) {
        set_entry(step->options, rest.substr(0, dot2), Value{Value::Kind::kMap, "", {}, {}, set.loc}, set.loc);
        sub = step->options.find(rest.substr(0, dot2));
      }
      set_entry(*sub, rest.substr(dot2 + 1), std::move(value), set.loc);
    }
  }
  name_steps(r.steps);
  return r;
}

}  // namespace moekit::recipes
