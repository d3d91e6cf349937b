#include "io/dataset.h"
#include "io/text_lines.h"
#include "io/qa_dataset.h"
#include "io/token_dataset.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "model/error.h"

namespace moekit::io {

namespace {

namespace fs = std::filesystem;

// One example before label resolution: the label is kept as text (JSON integers as digits).
struct Row {
  size_t line = 0;
  Example ex;
  bool has_label = false;
  std::string label;
  bool label_is_list = false;            // a JSON array (multi-label)
  std::vector<std::string> label_list;   // its items, integers as digits
};

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> cells;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    cells.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return cells;
    start = tab + 1;
  }
}

std::vector<Row> read_tsv(const fs::path& path, bool require_label_column) {
  std::vector<Row> rows;
  std::vector<std::string> header;
  int text_col = -1, pair_col = -1, label_col = -1;
  for_each_line(path, [&](size_t line_no, const std::string& line) {
    std::vector<std::string> cells = split_tabs(line);
    if (header.empty()) {
      header = cells;
      std::string names;
      for (size_t i = 0; i < cells.size(); ++i) {
        names += (i ? ", " : "") + ("'" + cells[i] + "'");
        int* col = cells[i] == "text" ? &text_col : cells[i] == "text_pair" ? &pair_col
                 : cells[i] == "label" ? &label_col : nullptr;
        if (!col) continue;
        if (*col >= 0) fail(path, at_line(line_no) + "duplicate column '" + cells[i] + "'");
        *col = static_cast<int>(i);
      }
      const std::string hint = " (header has " + names + "; expected columns text, label, optional text_pair)";
      if (text_col < 0) fail(path, at_line(line_no) + "missing column 'text'" + hint);
      if (require_label_column && label_col < 0)
        fail(path, at_line(line_no) + "missing column 'label'" + hint);
      return;
    }
    if (cells.size() != header.size())
      fail(path, at_line(line_no) + "expected " + std::to_string(header.size()) +
                     " tab-separated columns (as in the header), got " + std::to_string(cells.size()));
    Row row;
    row.line = line_no;
    row.ex.text = cells[static_cast<size_t>(text_col)];
    if (pair_col >= 0) {
      // An empty cell means "no second segment" (a TSV mixing single texts and pairs).
      row.ex.text_pair = cells[static_cast<size_t>(pair_col)];
      row.ex.has_pair = !row.ex.text_pair.empty();
    }
    if (label_col >= 0 && !cells[static_cast<size_t>(label_col)].empty()) {
      row.has_label = true;
      row.label = cells[static_cast<size_t>(label_col)];
    }
    rows.push_back(std::move(row));
  });
  return rows;
}

std::vector<Row> read_jsonl(const fs::path& path) {
  std::vector<Row> rows;
  for_each_line(path, [&](size_t line_no, const std::string& line) {
    const nlohmann::json obj = parse_json_line(line, line_no, path);
    Row row;
    row.line = line_no;
    auto text = obj.find("text");
    if (text == obj.end() || text->is_null()) fail(path, at_line(line_no) + "missing \"text\"");
    if (!text->is_string())
      fail(path, at_line(line_no) + "\"text\": expected a string, got " + text->type_name());
    row.ex.text = text->get<std::string>();
    auto pair = obj.find("text_pair");
    if (pair != obj.end() && !pair->is_null()) {
      if (!pair->is_string())
        fail(path, at_line(line_no) + "\"text_pair\": expected a string, got " + pair->type_name());
      row.ex.text_pair = pair->get<std::string>();
      row.ex.has_pair = true;
    }
    auto label = obj.find("label");
    if (label != obj.end() && !label->is_null()) {
      row.has_label = true;
      auto item_text = [&](const nlohmann::json& v, const char* what) {
        if (v.is_string()) return v.get<std::string>();
        if (v.is_number()) return v.dump();  // an index, or a regression value
        fail(path, at_line(line_no) + what + v.type_name());
      };
      if (label->is_array()) {
        row.label_is_list = true;
        for (const auto& item : *label)
          row.label_list.push_back(item_text(item, "\"label\": expected a list of names or integers, got an item of type "));
      } else {
        row.label = item_text(*label, "\"label\": expected a string, a number or a list of names, got ");
      }
    }
    rows.push_back(std::move(row));
  });
  return rows;
}

std::string missing_label_message(const fs::path& path) {
  return lower_extension(path) == ".tsv" ? "missing label (empty 'label' cell)" : "missing \"label\"";
}

std::vector<Row> read_rows(const fs::path& path, bool require_label_column) {
  const std::string ext = lower_extension(path);
  std::vector<Row> rows;
  if (ext == ".tsv") {
    rows = read_tsv(path, require_label_column);
  } else if (ext == ".jsonl" || ext == ".json") {
    rows = read_jsonl(path);
  } else {
    fail(path, "unknown dataset format '" + ext + "'; expected .tsv, .jsonl or .json");
  }
  check(!rows.empty(), path, "empty dataset: no examples");
  return rows;
}

// An optional '-' and digits; false on overflow as well.
bool parse_integer(const std::string& s, long long& value) {
  if (s.empty()) return false;
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (!std::all_of(first + (s[0] == '-'), last, [](char c) { return c >= '0' && c <= '9'; }) ||
      s == "-")
    return false;
  auto [ptr, ec] = std::from_chars(first, last, value);
  return ec == std::errc() && ptr == last;
}


// A regression target: a finite decimal number, the whole text.
float parse_value(const std::string& s, const fs::path& path, size_t line) {
  char* end = nullptr;
  const double v = s.empty() ? 0 : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v) || std::abs(v) > 3e38)
    fail(path, at_line(line) + "label '" + s + "' is not a number (a regression model's labels are values)");
  return static_cast<float>(v);
}

// The names of a multi-label row: a JSON list's items, or a TSV cell's comma-separated ones.
std::vector<std::string> label_names(const Row& row) {
  if (row.label_is_list) return row.label_list;
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= row.label.size()) {
    const size_t comma = std::min(row.label.find(',', start), row.label.size());
    if (comma > start) names.push_back(row.label.substr(start, comma - start));
    start = comma + 1;
  }
  return names;
}

}  // namespace

std::vector<Example> read_dataset(const fs::path& path, const std::vector<std::string>& labels,
                                  bool require_labels, Task task) {
  if (task == Task::token_classification) return read_token_dataset(path, labels, require_labels);
  if (task == Task::question_answering) return read_qa_dataset(path, require_labels);
  std::unordered_map<std::string, int> by_name;
  for (size_t i = 0; i < labels.size(); ++i) by_name.emplace(labels[i], static_cast<int>(i));
  std::string known;
  for (size_t i = 0; i < labels.size() && i < 5; ++i) known += (i ? ", " : "") + labels[i];
  if (labels.size() > 5) known += ", ... (" + std::to_string(labels.size()) + " in total)";
  // A label name, or an integer index when it is not a name.
  auto resolve = [&](const std::string& name, size_t line) {
    if (auto it = by_name.find(name); it != by_name.end()) return it->second;
    if (long long index; parse_integer(name, index) && !labels.empty()) {
      if (index < 0 || index >= static_cast<long long>(labels.size()))
        fail(path, at_line(line) + "label index " + name + " out of range; expected 0 to " +
                       std::to_string(static_cast<long long>(labels.size()) - 1) + " (" +
                       std::to_string(labels.size()) + " labels)");
      return static_cast<int>(index);
    }
    char* end = nullptr;
    if (!name.empty() && (std::strtod(name.c_str(), &end), end == name.c_str() + name.size()))
      fail(path, at_line(line) + "expected a label name or an integer index, got the number " + name +
                     " (values as labels need problem_type regression)");
    fail(path, at_line(line) + "unknown label '" + name + "'; " +
                   (labels.empty() ? "the model has no labels" : "known labels: " + known));
  };

  std::vector<Example> out;
  for (Row& row : read_rows(path, require_labels)) {
    if (!row.has_label) {
      if (require_labels) fail(path, at_line(row.line) + missing_label_message(path));
    } else if (task == Task::multi_label) {
      row.ex.targets.assign(labels.size(), 0.0f);
      for (const std::string& name : label_names(row)) row.ex.targets[static_cast<size_t>(resolve(name, row.line))] = 1.0f;
    } else if (row.label_is_list) {
      fail(path, at_line(row.line) + "\"label\" is a list, but the model's problem_type is " + task_name(task) +
                     " (a list needs multi_label_classification)");
    } else if (task == Task::regression) {
      row.ex.targets = {parse_value(row.label, path, row.line)};
    } else {
      row.ex.label = resolve(row.label, row.line);
    }
    out.push_back(std::move(row.ex));
  }
  return out;
}

std::vector<std::string> read_texts(const fs::path& path) {
  std::vector<std::string> out;
  if (lower_extension(path) == ".txt") {
    for_each_line(path, [&](size_t, const std::string& line) { out.push_back(line); });
    check(!out.empty(), path, "empty text file: no lines");
    return out;
  }
  for (Row& row : read_rows(path, false))
    out.push_back(row.ex.has_pair ? row.ex.text + " " + row.ex.text_pair : std::move(row.ex.text));
  return out;
}

std::vector<Example> read_unlabelled(const fs::path& path, bool pairs) {
  std::vector<Example> out;
  if (lower_extension(path) == ".txt") {
    check(!pairs, path, "a .txt file has one text per line, no pairs; give text_pair in a .tsv or .jsonl file");
    for (std::string& t : read_texts(path)) {
      Example e;
      e.text = std::move(t);
      out.push_back(std::move(e));
    }
    return out;
  }
  for (Row& row : read_rows(path, false)) {
    if (pairs && !row.ex.has_pair) fail(path, at_line(row.line) + "no text_pair (--pairs needs one in every example)");
    if (!pairs) row.ex.has_pair = false, row.ex.text_pair.clear();
    row.ex.label = -1;
    out.push_back(std::move(row.ex));
  }
  return out;
}

std::vector<std::string> collect_labels(const fs::path& path, Task task) {
  if (task == Task::token_classification) return collect_tags(path);
  if (task == Task::question_answering) {  // the two span logits, as HF names them; the file is checked
    read_qa_dataset(path, true);
    return {"LABEL_0", "LABEL_1"};
  }
  std::vector<std::string> names;
  std::unordered_map<std::string, bool> seen;
  for (const Row& row : read_rows(path, true)) {
    if (!row.has_label) fail(path, at_line(row.line) + missing_label_message(path));
    if (task == Task::regression) {
      parse_value(row.label_is_list ? std::string("[...]") : row.label, path, row.line);
      continue;
    }
    if (task == Task::single_label && row.label_is_list)
      fail(path, at_line(row.line) + "\"label\" is a list; a multi-label task needs problem_type multi_label_classification");
    for (const std::string& name : task == Task::multi_label ? label_names(row) : std::vector<std::string>{row.label})
      if (seen.emplace(name, true).second) names.push_back(name);
  }
  if (task == Task::regression) return {"LABEL_0"};
  check(!names.empty(), path, "no label names in any label set");
  bool all_integers = std::all_of(names.begin(), names.end(), [](const std::string& s) {
    long long v;
    return parse_integer(s, v);
  });
  if (all_integers) {
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
      long long x = 0, y = 0;
      parse_integer(a, x);
      parse_integer(b, y);
      return x != y ? x < y : a < b;
    });
  } else {
    std::sort(names.begin(), names.end());  // byte order = code point order, as Python's sorted()
  }
  return names;
}

}  // namespace moekit::io
