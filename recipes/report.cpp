#include "recipes/report.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "compress/importance.h"
#include "io/atomic_file.h"
#include "model/error.h"
#include "recipes/fingerprint.h"
#include "recipes/svg.h"

namespace moekit::recipes {

namespace {

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > (v < 0 ? 1 : 0); i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

struct Cells {
  std::string accuracy, macro_f1, bench_speed, eval_speed, size, params;  // or the task's headline pair
};

// The two quality columns of the model tables: accuracy and macro-F1, or for a regression head
// Pearson and Spearman, for a token head entity F1 and token accuracy.
struct Headline {
  const char *first, *second, *first_title, *second_title;
};
Headline headline(const std::vector<ModelRow>& rows) {
  for (const ModelRow& r : rows) {
    if (r.task_metrics.count("entity_f1")) return {"entity_f1", "token_accuracy", "entity-F1", "token acc"};
    if (r.task_metrics.count("exact_match")) return {"exact_match", "f1", "EM", "F1"};
    if (r.task_metrics.count("pearson")) return {"pearson", "spearman", "pearson", "spearman"};
  }
  return {"accuracy", "macro_f1", "accuracy", "macro-F1"};
}

std::string metric_cell(const ModelRow& r, const std::string& key) {
  const auto it = r.task_metrics.find(key);
  const double v = key == "accuracy" ? r.accuracy : key == "macro_f1" ? r.macro_f1
                   : it != r.task_metrics.end() ? it->second : -1;
  return v >= 0 || it != r.task_metrics.end() ? fmt("%.4f", v) : "-";  // a Pearson may be negative
}

Cells cells(const ModelRow& r, const Headline& h = {"accuracy", "macro_f1", "", ""}) {
  return {metric_cell(r, h.first), metric_cell(r, h.second),
          r.bench_tokens_per_second >= 0 ? fmt("%.0f", r.bench_tokens_per_second) : "-",
          r.eval_tokens_per_second >= 0 ? fmt("%.0f", r.eval_tokens_per_second) : "-",
          fmt("%.2f MB", static_cast<double>(r.file_bytes) / 1e6),
          r.parameters >= 0 ? with_commas(r.parameters) : "-"};
}

std::string html_training(const PlannedStep& step) {
  const auto lines = read_metrics(step.outputs.at(0) / "metrics.jsonl");
  if (lines.empty()) return "<p>no metrics.jsonl</p>\n";
  std::map<std::string, svg::Series> losses;
  svg::Series acc{"dev accuracy", {}}, f1{"dev macro-F1", {}};
  for (const auto& l : lines) {
    const double x = l.value("step", 0.0);
    for (const auto& [k, v] : l.items())
      if ((k == "loss" || k.rfind("loss_", 0) == 0 || k == "dev_mlm_loss") && v.is_number()) {
        losses[k].name = k;
        losses[k].points.push_back({x, v.get<double>()});
      }
    if (l.contains("dev_entity_f1")) {  // a token head: its entity F1 and token accuracy
      acc = {"dev entity-F1", acc.points};
      f1 = {"dev token accuracy", f1.points};
      acc.points.push_back({x, l["dev_entity_f1"].get<double>()});
      f1.points.push_back({x, l.value("dev_token_accuracy", 0.0)});
    }
    if (l.contains("dev_exact_match")) {  // a QA head: SQuAD's EM and F1
      acc = {"dev EM", acc.points};
      f1 = {"dev F1", f1.points};
      acc.points.push_back({x, l["dev_exact_match"].get<double>()});
      f1.points.push_back({x, l.value("dev_f1", 0.0)});
    }
    if (l.contains("dev_accuracy")) acc.points.push_back({x, l["dev_accuracy"].get<double>()});
    if (l.contains("dev_macro_f1")) f1.points.push_back({x, l["dev_macro_f1"].get<double>()});
  }
  std::vector<svg::Series> loss_series;
  for (auto& kv : losses) loss_series.push_back(kv.second);
  // A pretrain step has no dev accuracy: its dev MLM loss is drawn with the training loss.
  std::string s = "<div class=\"charts\">" +
                  svg::line_chart(step.name + (step.kind == "pretrain" ? ": MLM loss" : ": training loss"), "step",
                                  loss_series) +
                  (acc.points.empty() ? "" : svg::line_chart(step.name + ": dev metrics", "step", {acc, f1})) +
                  "</div>\n";
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (it->contains("expert_load")) {
      s += "<h3>" + svg::escape(step.name) + ": expert load (fraction of tokens, step " +
           std::to_string(it->value("step", 0)) + ")</h3>\n" +
           svg::heatmap(step.name + ": tokens per expert", (*it)["expert_load"].get<std::vector<std::vector<double>>>(),
                        "layer", "expert");
      break;
    }
  return s;
}

std::string html_importance(const PlannedStep& step) {
  std::string s = "<div class=\"charts\">";
  try {
    const auto imp = compress::read_importance(step.outputs.at(0));
    for (size_t l = 0; l < imp.layers.size(); ++l) {
      std::vector<double> logs;
      for (double v : imp.layers[l]) logs.push_back(std::log10(v + 1e-12));
      s += svg::histogram(step.name + " layer " + std::to_string(l), logs, 30);
    }
  } catch (const Error& e) {
    s += "<p>" + svg::escape(e.what()) + "</p>";
  }
  return s + "</div>\n";
}

// One step's metrics as short "key value" pairs (nested objects flattened one level), so the
// steps table fits the page.
// The exported graph run in ONNX Runtime against moekit's forward pass (`moekit onnx-check`).
std::string html_onnx_check(const PlannedStep& step) {
  const auto j = read_json(step.capture);
  if (!j.is_object() || !j.contains("onnx-check")) return "<p>no result</p>\n";
  const auto& c = j["onnx-check"];
  if (c.contains("skipped")) return "<p>skipped: " + svg::escape(c["skipped"].get<std::string>()) + "</p>\n";
  std::ostringstream h;
  h << "<p class=\"claim\">ONNX Runtime runs <code>" << svg::escape(c.value("onnx", "")) << "</code> on "
    << c.value("examples", 0) << " examples: labels agree with moekit's on "
    << fmt("%.2f%%", 100 * c.value("label_agreement", 0.0)) << ", the largest logit difference is "
    << fmt("%.2g", c.value("max_abs_logit_diff", 0.0));
  if (c.contains("ort_accuracy")) h << ", accuracy " << fmt("%.4f", c["ort_accuracy"].get<double>());
  h << ". Tokens/s on the same batches (" << c.value("threads", 0) << " thread(s)): moekit "
    << fmt("%.0f", c.value("moekit_tokens_per_second", 0.0)) << ", ONNX Runtime "
    << fmt("%.0f", c.value("ort_tokens_per_second", 0.0)) << ".</p>\n";
  return h.str();
}

std::string metrics_text(const nlohmann::json& m) {
  std::string out;
  auto value = [](const nlohmann::json& v) {
    if (v.is_number_integer()) return with_commas(v.get<int64_t>());
    if (v.is_number()) return fmt(std::fabs(v.get<double>()) >= 100 ? "%.0f" : "%.4g", v.get<double>());
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  for (const auto& [k, v] : m.items()) {
    if (!out.empty()) out += "; ";
    if (v.is_object()) {
      std::string inner;
      for (const auto& [k2, v2] : v.items()) inner += (inner.empty() ? "" : ", ") + k2 + " " + value(v2);
      out += k + ": " + inner;
    } else {
      out += k + " " + value(v);
    }
  }
  return out;
}

// Points between two fractions, signed.
std::string points(double a, double b) { return fmt("%+.2f points", 100 * (a - b)); }

// The comparison the demo exists for: each model against the first (the teacher) and against
// the one before it (the MoE before its int8 export), with a sentence computed from the numbers.
std::string html_claims(const std::vector<ModelRow>& rows) {
  if (rows.size() < 2 || rows[0].accuracy < 0) return "";
  const ModelRow& ref = rows[0];
  std::ostringstream h;
  h << "<h2>Teacher vs MoE vs int8</h2>\n<table id=\"claims\"><tr><th>model</th><th>accuracy</th><th>vs "
    << svg::escape(ref.name) << "</th><th>macro-F1</th><th>speed-up (bench)</th><th>file size</th><th>size vs "
    << svg::escape(ref.name) << "</th></tr>\n";
  for (const auto& r : rows) {
    const Cells c = cells(r);
    const bool speed = r.bench_tokens_per_second > 0 && ref.bench_tokens_per_second > 0;
    h << "<tr><td>" << svg::escape(r.name) << "</td><td>" << c.accuracy << "</td><td>"
      << (r.accuracy >= 0 ? points(r.accuracy, ref.accuracy) : "-") << "</td><td>" << c.macro_f1 << "</td><td>"
      << (speed ? fmt("%.2fx", r.bench_tokens_per_second / ref.bench_tokens_per_second) : "-") << "</td><td>" << c.size
      << "</td><td>"
      << (ref.file_bytes > 0 ? fmt("%.2fx", static_cast<double>(r.file_bytes) / static_cast<double>(ref.file_bytes)) : "-")
      << "</td></tr>\n";
  }
  h << "</table>\n<p class=\"claim\">";
  for (size_t i = 1; i < rows.size(); ++i) {
    const ModelRow& r = rows[i];
    const ModelRow& prev = rows[i - 1];
    if (r.accuracy < 0) continue;
    h << svg::escape(r.name) << " scores " << fmt("%.2f%%", 100 * r.accuracy) << " test accuracy, "
      << points(r.accuracy, ref.accuracy) << " against " << svg::escape(ref.name);
    if (i > 1 && prev.accuracy >= 0) h << " and " << points(r.accuracy, prev.accuracy) << " against " << svg::escape(prev.name);
    if (r.bench_tokens_per_second > 0 && ref.bench_tokens_per_second > 0)
      h << ", at " << fmt("%.2fx", r.bench_tokens_per_second / ref.bench_tokens_per_second) << " the "
        << svg::escape(ref.name) << "'s bench throughput";
    if (ref.file_bytes > 0)
      h << " in " << fmt("%.0f%%", 100.0 * static_cast<double>(r.file_bytes) / static_cast<double>(ref.file_bytes))
        << " of its file size";
    h << ". ";
  }
  h << "</p>\n";
  return h.str();
}

}  // namespace

std::vector<nlohmann::json> read_metrics(const fs::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    try {
      lines.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception&) {
      // a torn last line of an interrupted run
    }
  }
  return lines;
}

std::vector<ModelRow> model_rows(const Plan& plan) {
  std::vector<ModelRow> rows;
  auto row = [&](const std::string& name, const std::string& path) -> ModelRow& {
    for (auto& r : rows)
      if (r.name == name) return r;
    rows.emplace_back();
    rows.back().name = name;
    rows.back().path = path;
    rows.back().file_bytes = path_bytes(path);
    return rows.back();
  };
  for (const auto& step : plan.steps) {
    if (step.kind != "eval") continue;
    const auto j = read_json(step.capture);
    if (!j.is_object()) continue;
    for (const auto& m : j.value("models", nlohmann::json::array())) {
      ModelRow& r = row(m.value("name", ""), m.value("path", ""));
      if (m.contains("eval")) {
        r.accuracy = m["eval"].value("accuracy", -1.0);
        r.macro_f1 = m["eval"].value("macro_f1", -1.0);
        for (const char* k : {"pearson", "spearman", "mse", "micro_f1", "entity_f1", "entity_precision",
                              "entity_recall", "token_accuracy", "exact_match", "f1"})
          if (m["eval"].contains(k)) r.task_metrics[k] = m["eval"][k].get<double>();
        r.eval_tokens_per_second = m["eval"].value("tokens_per_second", -1.0);
      }
      if (m.contains("inspect") && m["inspect"].contains("parameters"))
        r.parameters = m["inspect"]["parameters"].value("total", int64_t{-1});
    }
  }
  for (const auto& step : plan.steps) {
    if (step.kind != "bench") continue;
    const auto j = read_json(step.capture);
    if (!j.is_object() || !j.contains("bench")) continue;
    const auto& bench_rows = j["bench"].value("rows", nlohmann::json::array());
    for (size_t i = 0; i < bench_rows.size() && i < step.model_names.size(); ++i) {
      ModelRow& r = row(step.model_names[i], step.model_paths[i].string());
      r.bench_tokens_per_second = bench_rows[i].value("tokens_per_second", -1.0);
    }
  }
  return rows;
}

std::string format_rows(const std::vector<ModelRow>& rows) {
  std::ostringstream os;
  char line[256];
  const Headline head = headline(rows);
  std::snprintf(line, sizeof line, "%-24s %9s %9s %15s %14s %11s %13s\n", "model", head.first_title,
                head.second_title, "bench tokens/s", "eval tokens/s", "size", "parameters");
  os << line;
  for (const auto& r : rows) {
    const Cells c = cells(r, head);
    std::snprintf(line, sizeof line, "%-24s %9s %9s %15s %14s %11s %13s\n", r.name.c_str(), c.accuracy.c_str(),
                  c.macro_f1.c_str(), c.bench_speed.c_str(), c.eval_speed.c_str(), c.size.c_str(), c.params.c_str());
    os << line;
  }
  return os.str();
}

nlohmann::json step_metrics(const PlannedStep& step) {
  nlohmann::json m = nlohmann::json::object();
  if (step.resumable) {
    const auto lines = read_metrics(step.outputs.at(0) / "metrics.jsonl");
    for (const auto& l : lines) {
      m["steps"] = l.value("step", 0);
      if (l.contains("loss")) m["final_loss"] = l["loss"];
      if (l.contains("dev_mlm_loss") && l["dev_mlm_loss"].get<double>() < m.value("best_dev_mlm_loss", 1e300))
        m["best_dev_mlm_loss"] = l["dev_mlm_loss"];
      if (l.contains("dev_accuracy") && l["dev_accuracy"].get<double>() > m.value("best_dev_accuracy", -1.0)) {
        m["best_dev_accuracy"] = l["dev_accuracy"];
        m["best_dev_macro_f1"] = l.value("dev_macro_f1", 0.0);
      }
      for (const char* k : {"dev_pearson", "dev_micro_f1", "dev_entity_f1", "dev_f1"})  // the other heads
        if (l.contains(k) && l[k].get<double>() > m.value(std::string("best_") + k, -2.0)) m[std::string("best_") + k] = l[k];
    }
  } else if (step.kind == "eval" || step.kind == "bench") {
    Plan one;
    one.steps.push_back(step);
    for (const auto& r : model_rows(one)) {
      nlohmann::json e;
      if (r.accuracy >= 0) e["accuracy"] = r.accuracy, e["macro_f1"] = r.macro_f1;
      for (const auto& [k, v] : r.task_metrics) e[k] = v;
      if (r.bench_tokens_per_second >= 0)
        e["tokens_per_second"] = r.bench_tokens_per_second;
      else if (r.eval_tokens_per_second >= 0)
        e["tokens_per_second"] = r.eval_tokens_per_second;
      m[r.name] = e;
    }
  } else if (step.kind == "onnx-check") {
    const auto j = read_json(step.capture);
    if (j.is_object() && j.contains("onnx-check")) {
      const auto& c = j["onnx-check"];
      for (const char* k : {"skipped", "max_abs_logit_diff", "label_agreement", "moekit_tokens_per_second",
                            "ort_tokens_per_second", "ort_accuracy"})
        if (c.contains(k)) m[k] = c[k];
    }
  } else if (!step.outputs.empty()) {
    m["bytes"] = path_bytes(step.outputs[0]);
  }
  return m;
}

void write_report(const Plan& plan, const PlannedStep& step, const nlohmann::json& summary) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << svg::escape(step.title)
    << "</title>\n<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}"
       "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
       "td:first-child,th:first-child{text-align:left}.charts svg{margin:6px;border:1px solid #eee}"
       "td.metrics{text-align:left;font-size:90%;overflow-wrap:anywhere}p.claim{font-size:110%}</style>\n"
       "</head><body>\n<h1>"
    << svg::escape(step.title) << "</h1>\n<p>recipe <code>" << svg::escape(plan.recipe.string())
    << "</code>, work directory <code>" << svg::escape(plan.workdir.string()) << "</code></p>\n";

  const auto rows = model_rows(plan);
  h << html_claims(rows);
  const Headline head = headline(rows);
  h << "<h2>Models</h2>\n<table id=\"models\"><tr><th>model</th><th>" << head.first_title << "</th><th>"
    << head.second_title
    << "</th><th>tokens/s (bench)</th><th>tokens/s (eval)</th><th>file size</th><th>parameters</th></tr>\n";
  for (const auto& r : rows) {
    const Cells c = cells(r, head);
    h << "<tr><td>" << svg::escape(r.name) << "</td><td class=\"" << head.first << "\">" << c.accuracy
      << "</td><td class=\"" << head.second << "\">" << c.macro_f1 << "</td><td>" << c.bench_speed << "</td><td>" << c.eval_speed
      << "</td><td>" << c.size << "</td><td>" << c.params << "</td></tr>\n";
  }
  h << "</table>\n<h2>Steps</h2>\n<table><tr><th>step</th><th>kind</th><th>status</th><th>seconds</th><th>key "
       "metrics</th></tr>\n";
  for (const auto& s : summary.value("steps", nlohmann::json::array()))
    h << "<tr><td>" << svg::escape(s.value("name", "")) << "</td><td>" << svg::escape(s.value("kind", "")) << "</td><td>"
      << svg::escape(s.value("status", "")) << "</td><td>" << fmt("%.1f", s.value("seconds", 0.0)) << "</td><td class=\"metrics\">"
      << svg::escape(metrics_text(s.value("metrics", nlohmann::json::object()))) << "</td></tr>\n";
  h << "</table>\n";
  for (const auto& s : plan.steps) {
    if (&s == &step) break;
    if (s.resumable) h << "<h2>Training: " << svg::escape(s.name) << "</h2>\n" << html_training(s);
    if (s.kind == "onnx-check") h << "<h2>ONNX Runtime: " << svg::escape(s.name) << "</h2>\n" << html_onnx_check(s);
    if (s.kind == "importance")
      h << "<h2>Importance scores: " << svg::escape(s.name) << "</h2>\n<p>Distribution of MoEBERT importance per FFN "
        << "neuron, one histogram per layer (log10 scale).</p>\n"
        << html_importance(s);
  }
  h << "</body></html>\n";
  io::write_text_atomic(step.outputs.at(0), h.str());
}

}  // namespace moekit::recipes
