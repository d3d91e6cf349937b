#include "recipes/plan.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "model/error.h"
#include "recipes/init_config.h"

namespace moekit::recipes {

namespace {

const std::vector<std::string> kKinds{"init",   "pretrain", "train", "importance", "moefy",     "distill",
                                      "export", "eval",     "bench", "report",     "onnx-check"};
// Options naming files or directories a command reads; `out` is what it writes.
const std::set<std::string> kInputKeys{"model", "teacher",    "student", "train", "dev",
                                       "data",  "importance", "config",  "vocab", "labels-from", "fit-router", "onnx"};

// Commands that run data-parallel under an MPI launcher (distill/communicator.h).
const std::set<std::string> kDataParallel{"train", "distill", "importance", "pretrain"};

bool is_true(const std::string& s) { return s == "true" || s == "yes" || s == "on" || s == "True"; }
bool is_false(const std::string& s) { return s == "false" || s == "no" || s == "off" || s == "False"; }

std::string type_words(const std::string& cli_type) {
  if (cli_type == "INT") return "an integer";
  if (cli_type == "UINT") return "a non-negative integer";
  if (cli_type == "FLOAT") return "a number";
  return "a value of type " + cli_type;
}

PlannedStep new_step(const std::string& name, const std::string& kind, const Loc& loc) {
  PlannedStep s;
  s.name = name;
  s.kind = kind;
  s.loc = loc;
  return s;
}

const Value& scalar(const Value& v, const std::string& what) {
  if (v.kind != Value::Kind::kScalar) fail(v.loc, what + ": expected a value, got a " + v.kind_name());
  return v;
}

class Planner {
 public:
  Planner(const Recipe& r, const AppBuilder& build) : r_(r), build_(build) {}

  Plan run() {
    const Value* name = r_.root.find("name");
    plan_.name = name ? scalar(*name, "name").text : r_.file.stem().string();
    plan_.recipe = r_.file;
    workdir_ = fs::absolute(scalar(*r_.root.find("workdir"), "workdir").text).lexically_normal();
    plan_.workdir = workdir_;
    if (const Value* p = r_.root.find("prepare")) add_prepare(*p);
    if (const Value* d = r_.root.find("data")) {
      if (!d->is_map())
        fail(d->loc, "data: expected a map such as {train: train.tsv, dev: dev.tsv}, got a " + d->kind_name());
      for (const auto& e : d->entries) data_[e.key] = existing_source(scalar(e.value, "data." + e.key));
    }
    if (const Value* v = r_.root.find("vocab")) vocab_ = existing_source(scalar(*v, "vocab"));
    for (size_t i = 0; i < r_.steps.size(); ++i) {  // names of all outputs, for "later step" errors
      const auto& s = r_.steps[i];
      later_.push_back({s.name, i});
      if (const Value* out = s.options.is_map() ? s.options.find("out") : nullptr)
        if (out->kind == Value::Kind::kScalar) later_.push_back({out->text, i});
    }
    for (size_t i = 0; i < r_.steps.size(); ++i) {
      current_ = i;
      const StepSpec& s = r_.steps[i];
      if (s.kind == "report")
        add_report(s);
      else
        add_command_step(s);
    }
    return plan_;
  }

 private:
  struct Output {
    std::string written;  // as the recipe names it: "teacher", "data/train.tsv"
    fs::path path;
  };

  fs::path in_workdir(const std::string& text) const { return (workdir_ / text).lexically_normal(); }
  fs::path in_recipe_dir(const std::string& text) const { return (r_.dir / text).lexically_normal(); }

  // A data/vocab/script path: a prepare output (in the workdir) or a file next to the recipe.
  fs::path existing_source(const Value& v) {
    for (const auto& o : outputs_)
      if (o.written == v.text) return o.path;
    fs::path p = in_recipe_dir(v.text);
    if (!fs::exists(p)) fail(v.loc, "no such file: " + p.string());
    return p;
  }

  fs::path resolve_input(const Value& v, const std::string& key, const std::string& kind) {
    for (auto it = outputs_.rbegin(); it != outputs_.rend(); ++it)
      if (it->written == v.text) return it->path;
    for (const auto& [name, index] : later_)
      if (name == v.text && index >= current_)
        fail(v.loc, key + ": \"" + v.text + "\" is the output of " +
                        (index == current_ ? "this step" : "a later step (" + r_.steps[index].name + ")") +
                        "; steps see only earlier outputs");
    if (auto it = data_.find(v.text); it != data_.end()) return it->second;
    fs::path p = in_recipe_dir(v.text);
    if (fs::exists(p)) return p;
    std::vector<std::string> names;
    for (const auto& o : outputs_) names.push_back(o.written);
    for (const auto& d : data_) names.push_back(d.first);
    std::string dym = did_you_mean(v.text, names);
    fail(v.loc, key + ": \"" + v.text + "\" in step " + kind +
                    " is no earlier step's output, data set or existing file" +
                    (dym.empty() ? " (looked for " + p.string() + ")" : dym));
  }

  void add_output(PlannedStep& step, const std::string& written, const fs::path& path, const Loc& loc) {
    for (const auto& s : plan_.steps)
      for (const auto& o : s.outputs)
        if (o == path) fail(loc, "\"" + written + "\" is also written by step " + s.name);
    step.outputs.push_back(path);
    outputs_.push_back({written, path});
  }

  void add_prepare(const Value& p) {
    if (!p.is_map())
      fail(p.loc, "prepare: expected {script: FILE, args: [...], outputs: [...]}, got a " + p.kind_name());
    PlannedStep step = new_step("prepare", "prepare", p.loc);
    Command c{{"bash"}, workdir_, "", "", {}};
    for (const auto& e : p.entries) {
      if (e.key == "script") {
        const fs::path script = existing_source(scalar(e.value, "prepare.script"));
        c.argv.push_back(script.string());
        step.inputs.push_back(script);
      } else if (e.key != "args" && e.key != "outputs") {
        fail(e.loc, "unknown key \"" + e.key + "\" in prepare" + did_you_mean(e.key, {"script", "args", "outputs"}));
      }
    }
    if (c.argv.size() < 2) fail(p.loc, "prepare: missing key \"script\"");
    for (const auto& key : {"args", "outputs"}) {
      const Value* list = p.find(key);
      if (!list) continue;
      if (list->kind != Value::Kind::kList)
        fail(list->loc, std::string("prepare.") + key + ": expected a list, got a " + list->kind_name());
      for (const auto& item : list->items) {
        const std::string& text = scalar(item, std::string("prepare.") + key).text;
        if (std::string(key) == "args")
          c.argv.push_back(text);
        else
          add_output(step, text, in_workdir(text), item.loc);
      }
    }
    if (step.outputs.empty())
      fail(p.loc, "prepare: list its outputs (outputs: [data/train.tsv, ...]) so steps can use them");
    step.commands.push_back(c);
    plan_.steps.push_back(std::move(step));
  }

  // Inline `init: {hidden: 256, ...}` of a train step: a `moekit init` step with a generated config.
  // A pretrain step's model has no labels (the task head comes when `train` fine-tunes it).
  fs::path add_inline_init(const StepSpec& s, const Value& init, const std::string& train_data, int positions) {
    if (vocab_.empty()) fail(init.loc, "init needs the vocabulary: add a top-level key vocab: FILE");
    const InitConfig config = init_config(init, positions);
    const std::string out_name = s.name + "-init";
    PlannedStep step = new_step(out_name, "init", init.loc);
    step.generated = in_workdir(out_name + ".config.json");
    step.generated_text = config.json_text;
    step.inputs = {step.generated, vocab_};
    std::vector<std::string> argv{"moekit", "init", "--config=" + step.generated.string(), "--vocab=" + vocab_.string(),
                                  "--seed=" + config.seed, "--out=" + in_workdir(out_name).string()};
    if (s.kind == "train") {
      step.inputs.push_back(train_data);
      argv.push_back("--labels-from=" + train_data);
    }
    step.commands.push_back({argv, {}, "", "", {}});
    add_output(step, out_name, in_workdir(out_name), init.loc);
    validate(step, s, {});
    plan_.steps.push_back(std::move(step));
    return in_workdir(out_name);
  }

  void add_command_step(const StepSpec& s) {
    CLI::App app;
    build_(app);
    CLI::App* sub = nullptr;
    for (CLI::App* c : app.get_subcommands({}))
      if (c->get_name() == s.kind && s.kind != "run") sub = c;
    if (!sub) {
      if (std::find(kKinds.begin(), kKinds.end(), s.kind) != kKinds.end())
        fail(s.loc, "step kind \"" + s.kind + "\" needs `moekit " + s.kind + "`, which this build does not have");
      fail(s.loc, "unknown step kind \"" + s.kind + "\"" + did_you_mean(s.kind, kKinds) +
                      "; kinds: init, pretrain, train, importance, moefy, distill, export, eval, bench, report, onnx-check");
    }
    std::map<std::string, CLI::Option*> opts;
    for (CLI::Option* o : sub->get_options())
      if (!o->get_lnames().empty() && o->get_lnames()[0] != "help") opts[o->get_lnames()[0]] = o;
    const bool multi_model = s.kind == "eval" || s.kind == "bench";
    const bool captures_json = multi_model || s.kind == "onnx-check";  // stdout JSON kept in <name>.json
    PlannedStep step = new_step(s.name, s.kind, s.loc);
    step.resumable = s.kind == "train" || s.kind == "distill" || s.kind == "pretrain";
    const bool has_init = s.kind == "train" || s.kind == "pretrain";
    std::vector<std::string> args;
    std::map<std::string, Loc> key_locs;  // option -> where it was set, for CLI11's messages
    const Value* init = nullptr;
    const Value* models = nullptr;
    std::string router;
    std::vector<std::string> launcher = default_launcher(s.kind);
    for (const auto& e : s.options.entries) {
      const std::string k = normalize_key(e.key);
      key_locs[k] = e.value.loc;
      if (k == "name") continue;
      if (k == "launcher") {
        if (!kDataParallel.count(s.kind))
          fail(e.loc, "launcher: step " + s.kind + " does not run data-parallel (only train, distill, importance, pretrain)");
        launcher = parse_launcher(e.value);
        continue;
      }
      if (k == "resume") fail(e.loc, "resume is managed by the runner: an interrupted step resumes by itself");
      if (k == "init" && has_init) {
        init = &e.value;
        continue;
      }
      if (multi_model && (k == "models" || k == "model")) {
        if (models) fail(e.loc, "give either model or models in step " + s.kind + ", not both");
        models = &e.value;
        continue;
      }
      if (captures_json && k == "json") fail(e.loc, "json is set by the runner (it keeps the step's JSON)");
      auto it = opts.find(k);
      if (it == opts.end()) {
        std::vector<std::string> names{"name"};
        for (const auto& kv : opts) names.push_back(kv.first);
        if (has_init) names.push_back("init");
        if (multi_model) names.push_back("models");
        fail(e.loc, "unknown key \"" + e.key + "\" in step " + s.kind + did_you_mean(k, names));
      }
      const CLI::Option* opt = it->second;
      if (opt->get_expected_max() == 0) {  // a flag
        const std::string& text = scalar(e.value, k).text;
        if (is_true(text))
          args.push_back("--" + k);
        else if (!is_false(text))
          fail(e.value.loc, k + ": expected true or false, got \"" + text + "\" in step " + s.kind);
        continue;
      }
      std::vector<const Value*> values;
      if (e.value.kind == Value::Kind::kList) {
        if (opt->get_expected_max() <= 1) fail(e.value.loc, k + ": expected one value, got a list in step " + s.kind);
        for (const auto& item : e.value.items) values.push_back(&item);
      } else {
        values.push_back(&e.value);
      }
      for (const Value* v : values) {
        const std::string& text = scalar(*v, k).text;
        std::string value = text;
        if (k == "out") {
          add_output(step, text, in_workdir(text), v->loc);
          value = in_workdir(text).string();
        } else if (kInputKeys.count(k)) {
          const fs::path p = resolve_input(*v, k, s.kind);
          step.inputs.push_back(p);
          value = p.string();
        }
        if (k == "router") router = text;
        args.push_back("--" + k + "=" + value);
      }
    }
    // Data defaults: train/dev from data:, importance on the training set, eval on the test set.
    auto given = [&](const std::string& k) { return key_locs.count(k) > 0; };
    auto fill = [&](const std::string& k, std::vector<std::string> from) {
      if (!opts.count(k) || opts[k]->get_expected_max() == 0 || given(k)) return;  // bench --train is a flag
      for (const auto& d : from)
        if (data_.count(d)) {
          args.push_back("--" + k + "=" + data_[d].string());
          step.inputs.push_back(data_[d]);
          return;
        }
    };
    fill("train", {"train"});
    fill("dev", {"dev"});
    if (s.kind == "importance" || (s.kind == "moefy" && router == "hash-balance")) fill("data", {"train"});
    if (s.kind == "eval" || s.kind == "onnx-check") fill("data", {"test", "dev"});
    if (init) {
      if (given("model")) fail(init->loc, "give either model or init in step " + s.kind + ", not both");
      auto train =
          std::find_if(args.begin(), args.end(), [](const std::string& a) { return a.rfind("--train=", 0) == 0; });
      if (train == args.end()) fail(s.loc, "init needs the step's training data (train: or data: {train: ...})");
      int positions = 512;
      if (const Value* len = s.options.find("max-seq-len"))
        if (len->kind == Value::Kind::kScalar && !len->text.empty() &&
            std::isdigit(static_cast<unsigned char>(len->text[0])))
          positions = std::stoi(len->text);
      const fs::path model = add_inline_init(s, *init, train->substr(8), positions);
      args.push_back("--model=" + model.string());
      step.inputs.push_back(model);
    }
    if (multi_model) {
      if (!models) fail(s.loc, "step " + s.kind + " needs models: [MODEL, ...]");
      std::vector<const Value*> list;
      if (models->kind == Value::Kind::kList)
        for (const auto& item : models->items) list.push_back(&item);
      else
        list.push_back(models);
      for (const Value* m : list) {
        step.model_names.push_back(scalar(*m, "models").text);
        step.model_paths.push_back(resolve_input(*m, "models", s.kind));
        step.inputs.push_back(step.model_paths.back());
      }
    }
    if (captures_json) {
      step.capture = in_workdir(s.name + ".json");
      add_output(step, s.name, step.capture, s.loc);
      args.push_back("--json");
    }
    if (s.kind == "eval") {
      for (size_t i = 0; i < step.model_paths.size(); ++i) {
        std::vector<std::string> argv{"moekit", "eval", "--model=" + step.model_paths[i].string()};
        argv.insert(argv.end(), args.begin(), args.end());
        step.commands.push_back({argv, {}, "eval", step.model_names[i], {}});
        step.commands.push_back(
            {{"moekit", "inspect", step.model_paths[i].string(), "--json"}, {}, "inspect", step.model_names[i], {}});
      }
    } else {
      std::vector<std::string> argv{"moekit", s.kind};
      for (const auto& p : step.model_paths) argv.push_back("--model=" + p.string());
      argv.insert(argv.end(), args.begin(), args.end());
      step.commands.push_back({argv, {}, captures_json ? s.kind : "", "", launcher});
    }
    validate(step, s, key_locs);
    // The step's name also refers to its main output ("model: teacher" when out: teacher).
    if (!step.outputs.empty() && step.name != outputs_.back().written) outputs_.push_back({step.name, step.outputs[0]});
    std::sort(step.inputs.begin(), step.inputs.end());
    step.inputs.erase(std::unique(step.inputs.begin(), step.inputs.end()), step.inputs.end());
    plan_.steps.push_back(std::move(step));
  }

  // MOEKIT_LAUNCHER (e.g. "mpirun -np 4 --hostfile hosts" or "srun"), split at spaces, for the
  // data-parallel steps without a launcher of their own.
  static std::vector<std::string> default_launcher(const std::string& kind) {
    std::vector<std::string> argv;
    const char* env = std::getenv("MOEKIT_LAUNCHER");
    if (!env || !kDataParallel.count(kind)) return argv;
    std::istringstream words(env);
    for (std::string w; words >> w;) argv.push_back(w);
    return argv;
  }

  // launcher: {mpirun: {np: 4, hosts: [a, b] | "a:2,b:2", hostfile: FILE, args: [...]}}
  //         | {command: [srun, --mpi=pmix]}
  std::vector<std::string> parse_launcher(const Value& v) {
    const char* form = "launcher: expected {mpirun: {np: N, hosts: ..., hostfile: ..., args: [...]}} or {command: [...]}";
    if (!v.is_map() || v.entries.size() != 1) fail(v.loc, std::string(form) + ", got a " + v.kind_name());
    const auto& [key, body, loc] = v.entries[0];
    auto words = [&](const Value& list, const std::string& what) {
      std::vector<std::string> out;
      if (list.kind != Value::Kind::kList) fail(list.loc, what + ": expected a list, got a " + list.kind_name());
      for (const auto& item : list.items) out.push_back(scalar(item, what).text);
      return out;
    };
    if (key == "command") {
      auto argv = words(body, "launcher.command");
      if (argv.empty()) fail(body.loc, "launcher.command: expected the launcher's argv, got an empty list");
      return argv;
    }
    if (key != "mpirun") fail(loc, "unknown launcher \"" + key + "\"" + did_you_mean(key, {"mpirun", "command"}));
    if (!body.is_map()) fail(body.loc, std::string(form) + ", got a " + body.kind_name());
    std::vector<std::string> argv{"mpirun"};
    for (const auto& e : body.entries) {
      if (e.key == "np") {
        const std::string& n = scalar(e.value, "launcher.mpirun.np").text;
        if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || std::stol(n) < 1)
          fail(e.value.loc, "launcher.mpirun.np: expected a positive integer, got \"" + n + "\"");
        argv.insert(argv.end(), {"-np", n});
      } else if (e.key == "hosts") {
        std::string hosts;
        if (e.value.kind == Value::Kind::kList) {
          for (const auto& h : words(e.value, "launcher.mpirun.hosts")) hosts += (hosts.empty() ? "" : ",") + h;
        } else {
          hosts = scalar(e.value, "launcher.mpirun.hosts").text;
        }
        argv.insert(argv.end(), {"--host", hosts});
      } else if (e.key == "hostfile") {
        argv.insert(argv.end(), {"--hostfile", existing_source(scalar(e.value, "launcher.mpirun.hostfile")).string()});
      } else if (e.key == "args") {
        for (auto& a : words(e.value, "launcher.mpirun.args")) argv.push_back(a);
      } else {
        fail(e.loc, "unknown key \"" + e.key + "\" in launcher.mpirun" +
                        did_you_mean(e.key, {"np", "hosts", "hostfile", "args"}));
      }
    }
    return argv;
  }

  // Lets CLI11 parse each command line without running it: types, ranges and required options
  // are the command's own. Errors point at the key that caused them.
  void validate(const PlannedStep& step, const StepSpec& s, const std::map<std::string, Loc>& key_locs) {
    for (const Command& c : step.commands) {
      if (c.argv[0] != "moekit") continue;
      CLI::App app;
      build_(app);
      // Parsed and checked is all we want: stop before the commands' callbacks (replacing them
      // would free the option structs they own while CLI11 still writes into them).
      struct Parsed {};
      app.parse_complete_callback([] { throw Parsed{}; });
      std::vector<const char*> argv;
      for (const auto& a : c.argv) argv.push_back(a.c_str());
      try {
        app.parse(static_cast<int>(argv.size()), argv.data());
      } catch (const Parsed&) {
      } catch (const CLI::ParseError& e) {
        std::string msg = e.what();
        std::string key;
        for (const auto& [k, loc] : key_locs)
          if (msg.find("--" + k) != std::string::npos && k.size() > key.size()) key = k;
        const Loc loc = key.empty() ? step.loc : key_locs.at(key);
        if (e.get_name() == "ConversionError" && !key.empty()) {
          CLI::App* sub = app.get_subcommand(c.argv[1]);
          const CLI::Option* opt = sub->get_option("--" + key);
          const size_t eq = msg.find(" = ");
          msg = key + ": expected " + type_words(opt->get_type_name()) + ", got \"" +
                (eq == std::string::npos ? "" : msg.substr(eq + 3)) + "\"";
        } else if (e.get_name() == "RequiredError") {
          msg += " (recipe key " + msg.substr(2, msg.find(' ') - 2) + ")";
        }
        fail(loc, msg + " in step " + s.kind);
      }
    }
  }

  void add_report(const StepSpec& s) {
    PlannedStep step = new_step(s.name, "report", s.loc);
    std::string out = "report.html";
    step.title = plan_.name;
    for (const auto& e : s.options.entries) {
      if (e.key == "out")
        out = scalar(e.value, "out").text;
      else if (e.key == "title")
        step.title = scalar(e.value, "title").text;
      else if (e.key != "name")
        fail(e.loc, "unknown key \"" + e.key + "\" in step report" + did_you_mean(e.key, {"out", "title", "name"}));
    }
    for (const auto& p : plan_.steps) {
      if (!p.capture.empty()) step.inputs.push_back(p.capture);
      if (p.resumable) step.inputs.push_back(p.outputs.at(0) / "metrics.jsonl");
      if (p.kind == "importance") step.inputs.push_back(p.outputs.at(0));
    }
    add_output(step, out, in_workdir(out), s.loc);
    plan_.steps.push_back(std::move(step));
  }

  const Recipe& r_;
  const AppBuilder& build_;
  Plan plan_;
  fs::path workdir_, vocab_;
  std::map<std::string, fs::path> data_;
  std::vector<Output> outputs_;
  std::vector<std::pair<std::string, size_t>> later_;
  size_t current_ = 0;
};

}  // namespace

std::vector<std::string> launched_argv(const Command& c, const std::string& exe) {
  std::vector<std::string> argv = c.launcher;
  argv.push_back(c.argv[0] == "moekit" ? exe : c.argv[0]);
  argv.insert(argv.end(), c.argv.begin() + 1, c.argv.end());
  return argv;
}

Plan make_plan(const Recipe& recipe, const AppBuilder& build_app) { return Planner(recipe, build_app).run(); }

}  // namespace moekit::recipes
