#include "recipes/runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <optional>

#include "io/atomic_file.h"
#include "model/error.h"
#include "recipes/fingerprint.h"
#include "recipes/report.h"
#include "recipes/subprocess.h"
#include "recipes/workdir_lock.h"

namespace moekit::recipes {

namespace {

using nlohmann::json;

struct Decision {
  bool run = false;
  std::string reason;
  bool resume = false;
  bool other_build = false;  // up to date, but made by another moekit binary
};

fs::path stamp_path(const Plan& plan, size_t i) {
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "%02zu-", i + 1);
  return plan.workdir / ".stamps" / (prefix + plan.steps[i].name + ".json");
}

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  try {
    return json::parse(in);
  } catch (const json::exception&) {
    return nullptr;  // a torn stamp counts as none
  }
}

// What makes two runs of a step the same: its command lines and the config it generates.
json identity(const PlannedStep& s) {
  json cmds = json::array();
  for (const auto& c : s.commands) cmds.push_back(c.argv);
  return {{"commands", cmds}, {"generated", s.generated_text}};
}

bool inside(const fs::path& p, const fs::path& dir) {
  const std::string a = p.string(), b = dir.string();
  return a == b || (a.size() > b.size() && a.compare(0, b.size(), b) == 0 && a[b.size()] == '/');
}

bool has_checkpoint(const fs::path& out) {
  std::error_code ec;
  if (!fs::is_directory(out / "checkpoints", ec)) return false;
  for (const auto& e : fs::directory_iterator(out / "checkpoints", ec))
    if (fs::exists(e.path() / "DONE")) return true;
  return false;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Runner {
 public:
  Runner(const Plan& plan, const RunOptions& o, std::ostream& out) : plan_(plan), o_(o), out_(out) {}

  void run() {
    const size_t n = plan_.steps.size();
    const long from = o_.from.empty() ? -1 : static_cast<long>(find_step_index(plan_, o_.from, "--from"));
    const long only = o_.only.empty() ? -1 : static_cast<long>(find_step_index(plan_, o_.only, "--only"));
    ran_.assign(n, false);
    summary_ = {{"recipe", plan_.recipe.string()},
                {"name", plan_.name},
                {"workdir", plan_.workdir.string()},
                {"steps", json::array()}};
    for (const auto& s : plan_.steps)
      summary_["steps"].push_back({{"name", s.name}, {"kind", s.kind}, {"status", "pending"}});
    if (o_.dry_run) {
      out_ << "plan of " << plan_.name << " (" << plan_.recipe.string() << "), work directory "
           << plan_.workdir.string() << "\n";
    } else {
      lock_.emplace(plan_.workdir);  // before anything in the work directory is touched
      fs::create_directories(plan_.workdir / ".stamps");
      log_.open(plan_.workdir / "run.log", std::ios::app);
      const std::time_t now = std::time(nullptr);
      char when[64];
      std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
      log_ << "==== moekit run " << plan_.recipe.string() << " at " << when << "\n";
    }
    for (size_t i = 0; i < n; ++i) {
      const PlannedStep& s = plan_.steps[i];
      Decision d;
      if (only >= 0 && static_cast<long>(i) != only) {
        d.reason = "not selected (--only)";
      } else if (from >= 0 && static_cast<long>(i) < from) {
        d.reason = "before --from";
      } else {
        d = decide(i, static_cast<long>(i) == only ? "--only" : (from >= 0 ? "--from" : ""));
      }
      char head[256];
      std::snprintf(head, sizeof head, "[%zu/%zu] %s (%s): ", i + 1, n, s.name.c_str(), s.kind.c_str());
      if (o_.dry_run) {
        out_ << head << (d.run ? "run" : "skip") << " - " << d.reason << (d.resume ? ", resumes" : "") << "\n";
        for (const auto& c : s.commands) out_ << "    $ " << render(launched_argv(c, "moekit")) << "\n";
        if (s.kind == "report") out_ << "    writes " << s.outputs[0].string() << "\n";
        ran_[i] = d.run;
        continue;
      }
      auto& entry = summary_["steps"][i];
      entry["reason"] = d.reason;
      if (!d.run) {
        // Stamps do not rerun a step when only moekit changed (a rebuild would redo everything);
        // they say so, and --from redoes it.
        const std::string note =
            d.other_build ? " (made by another moekit build; --from " + s.name + " redoes it)" : "";
        out_ << head << "skipped, " << d.reason << note << "\n" << std::flush;
        log_ << head << "skipped, " << d.reason << note << "\n";
        entry["status"] = d.reason == "up to date" ? "skipped" : "not run";
        if (d.reason == "up to date") entry["metrics"] = step_metrics(s);
        write_summary();
        continue;
      }
      run_step(i, d, head);
    }
    if (o_.dry_run) {
      out_ << "dry run: nothing was run\n";
      return;
    }
    const auto rows = model_rows(plan_);
    if (!rows.empty()) out_ << "\n" << format_rows(rows);
    for (const auto& s : plan_.steps)
      if (s.kind == "report" && fs::exists(s.outputs[0])) {
        out_ << "report: " << s.outputs[0].string() << "\n";
        summary_["report"] = s.outputs[0].string();
      }
    write_summary();
    out_ << "summary: " << (plan_.workdir / "summary.json").string()
         << ", log: " << (plan_.workdir / "run.log").string() << "\n";
  }

 private:
  Decision decide(size_t i, const std::string& forced) {
    const PlannedStep& s = plan_.steps[i];
    Decision d{true, forced};
    const json stamp = read_json_file(stamp_path(plan_, i));
    const bool same_identity = stamp.is_object() && stamp.value("identity", json()) == identity(s);
    d.resume = s.resumable && same_identity && stamp.value("status", "") == "running" && has_checkpoint(s.outputs[0]);
    if (!forced.empty()) return d;
    if (!stamp.is_object()) return {true, "not run yet", false};
    if (!s.generated.empty() && read_text(s.generated) != s.generated_text) return {true, "init config changed", false};
    if (stamp.value("status", "") != "done") {
      d.reason = "interrupted";
      return d;
    }
    if (!same_identity) return {true, "options changed", false};
    for (size_t j = 0; j < i; ++j)
      if (ran_[j])
        for (const auto& in : s.inputs)
          for (const auto& o : plan_.steps[j].outputs)
            if (inside(in, o)) return {true, "after " + plan_.steps[j].name, false};
    std::string what;
    const json inputs = fingerprint(s.inputs, stamp["inputs"]);
    if (!same_content(inputs, stamp["inputs"], &what)) return {true, "input changed: " + what, false};
    const json outputs = fingerprint(s.outputs, stamp["outputs"]);
    if (!same_content(outputs, stamp["outputs"], &what)) return {true, "output changed or missing: " + what, false};
    if (!o_.dry_run && (inputs != stamp["inputs"] || outputs != stamp["outputs"])) {
      json fresh = stamp;  // touched but unchanged: remember the new mtimes so the next check reads nothing
      fresh["inputs"] = inputs;
      fresh["outputs"] = outputs;
      io::write_text_atomic(stamp_path(plan_, i), fresh.dump(2) + "\n");
    }
    return {false, "up to date", false, stamp.value("moekit", std::string()) != build_id()};
  }

  void run_step(size_t i, const Decision& d, const std::string& head) {
    const PlannedStep& s = plan_.steps[i];
    auto& entry = summary_["steps"][i];
    if (!s.generated.empty() && read_text(s.generated) != s.generated_text)
      io::write_text_atomic(s.generated, s.generated_text);
    for (const auto& in : s.inputs)
      if (!fs::exists(in))
        fail(s.loc,
             "step " + s.name + " needs " + in.string() + ", which does not exist; hint: run the steps before it");
    if (!d.resume)
      for (const auto& out : s.outputs)
        if (inside(out, plan_.workdir) && out != plan_.workdir)
          fs::remove_all(out);  // a fresh start, no stale checkpoints
    for (const auto& out : s.outputs) fs::create_directories(out.parent_path());
    io::write_text_atomic(stamp_path(plan_, i), json{{"status", "running"}, {"identity", identity(s)}}.dump(2) + "\n");
    out_ << head << "running (" << d.reason << (d.resume ? ", resuming from its checkpoint" : "") << ")\n"
         << std::flush;
    log_ << head << "running (" << d.reason << (d.resume ? ", resuming" : "") << ")\n";
    entry["status"] = "running";
    write_summary();
    const auto start = std::chrono::steady_clock::now();
    json captured = {{"step", s.name}, {"models", json::array()}};
    for (size_t m = 0; m < s.model_names.size(); ++m)
      captured["models"].push_back({{"name", s.model_names[m]}, {"path", s.model_paths[m].string()}});
    if (s.kind == "report") {
      write_report(plan_, s, summary_);
    }
    for (const auto& c : s.commands) {
      std::vector<std::string> argv = c.argv;
      std::string program = argv[0];
      if (argv[0] == "moekit") {
        program = o_.exe.string();
        if (o_.threads > 0) argv.insert(argv.begin() + 1, "--threads=" + std::to_string(o_.threads));
        if (d.resume) argv.push_back("--resume=" + s.outputs[0].string());
      }
      if (!c.launcher.empty()) {  // e.g. mpirun -np 4 /path/to/moekit train ...
        Command launched = c;
        launched.argv = argv;
        // The launcher execs the path itself (on other hosts too): /proc/self/exe would be mpirun.
        if (argv[0] == "moekit") program = fs::canonical(o_.exe).string();
        argv = launched_argv(launched, program);
        program = argv[0];
      }
      out_ << "    $ " << render(argv) << "\n" << std::flush;
      log_ << "$ " << render(argv) << "\n";
      const ProcessResult r = run_process(program, argv, c.cwd, !c.capture_as.empty(), log_);
      if (!c.capture_as.empty()) log_ << r.stdout_text;
      if (r.exit_code != 0) {
        entry["status"] = "failed";
        entry["seconds"] = seconds_since(start);
        write_summary();
        fail(s.loc, "step " + s.name + " (" + s.kind + ") failed with exit code " + std::to_string(r.exit_code) +
                        (r.last_error.empty() ? "" : ": " + r.last_error) +
                        "; log: " + (plan_.workdir / "run.log").string());
      }
      if (c.capture_as.empty()) continue;
      json result;
      try {
        result = json::parse(r.stdout_text);
      } catch (const json::exception&) {
        fail(s.loc, "step " + s.name + ": `" + c.argv[1] + " --json` printed no JSON");
      }
      if (c.label.empty()) {
        captured[c.capture_as] = result;
      } else {
        for (auto& m : captured["models"])
          if (m["name"] == c.label) m[c.capture_as] = result;
      }
    }
    if (!s.capture.empty()) io::write_text_atomic(s.capture, captured.dump(2) + "\n");
    for (const auto& out : s.outputs)
      if (!fs::exists(out)) fail(s.loc, "step " + s.name + " finished but did not write " + out.string());
    const double secs = seconds_since(start);
    const json metrics = step_metrics(s);
    io::write_text_atomic(stamp_path(plan_, i), json{{"status", "done"},
                                                     {"identity", identity(s)},
                                                     {"moekit", build_id()},
                                                     {"inputs", fingerprint(s.inputs)},
                                                     {"outputs", fingerprint(s.outputs)},
                                                     {"seconds", secs},
                                                     {"metrics", metrics}}
                                                        .dump(2) +
                                                    "\n");
    ran_[i] = true;
    entry["status"] = "done";
    entry["seconds"] = secs;
    entry["metrics"] = metrics;
    write_summary();
    char tail[64];
    std::snprintf(tail, sizeof tail, "done in %.1fs", secs);
    out_ << head << tail << "\n" << std::flush;
    log_ << head << tail << " " << metrics.dump() << "\n";
    log_.flush();
  }

  static double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  void write_summary() { io::write_text_atomic(plan_.workdir / "summary.json", summary_.dump(2) + "\n"); }

  const Plan& plan_;
  const RunOptions& o_;
  std::ostream& out_;
  std::optional<WorkdirLock> lock_;  // held for the whole run (not for a dry run)
  std::ofstream log_;
  std::vector<bool> ran_;
  std::string build_id_;

  // Content hash of the moekit binary that runs the steps, recorded in each stamp.
  const std::string& build_id() {
    if (build_id_.empty()) {
      try {
        build_id_ = std::to_string(hash_file(o_.exe));
      } catch (const std::exception&) {
        build_id_ = "unknown";
      }
    }
    return build_id_;
  }
  json summary_;
};

}  // namespace

size_t find_step_index(const Plan& plan, const std::string& sel, const std::string& option) {
  std::vector<size_t> by_kind;
  std::vector<std::string> names;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    if (plan.steps[i].name == sel) return i;
    if (plan.steps[i].kind == sel) by_kind.push_back(i);
    names.push_back(plan.steps[i].name);
  }
  if (by_kind.size() == 1) return by_kind[0];
  if (by_kind.size() > 1) fail(option + " " + sel, "several steps are " + sel + "; name one");
  if (!sel.empty() &&
      std::all_of(sel.begin(), sel.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    const size_t n = std::stoul(sel);
    if (n >= 1 && n <= plan.steps.size()) return n - 1;
  }
  fail(option + " " + sel, "no such step" + did_you_mean(sel, names));
}

std::string render(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain =
        !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./,:+@%") ==
                          std::string::npos;
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

void run_plan(const Plan& plan, const RunOptions& options, std::ostream& out) { Runner(plan, options, out).run(); }

}  // namespace moekit::recipes
