// Line-by-line reading of dataset files, shared by every dataset format: bounded line length and
// line count, '\r' and a leading BOM removed, UTF-8 checked, errors naming file and 1-based line.
#pragma once
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace moekit::io {

// Bounds on what a dataset file may make us hold: one line (a real example is a few KB) and the
// number of non-blank lines; beyond them the file is refused before memory runs out.
constexpr size_t kMaxLineBytes = 1 << 20;
constexpr size_t kMaxExamples = 20'000'000;

// "line N: ", the prefix of every per-line message.
std::string at_line(size_t line);
bool is_blank(const std::string& s);  // only spaces and tabs

// Calls on_line(line_number, text) for each line (blank lines too when keep_blank: CoNLL files
// separate sentences by them). Throws Error naming the file (and line) when it cannot be read, a
// line is longer than kMaxLineBytes or not UTF-8, or there are more than kMaxExamples non-blank lines.
void for_each_line(const std::filesystem::path& path, const std::function<void(size_t, const std::string&)>& on_line,
                   bool keep_blank = false);

// One JSON Lines record: the object on `line`, or Error naming file and line (invalid JSON, not an
// object).
nlohmann::json parse_json_line(const std::string& line, size_t line_no, const std::filesystem::path& path);

// The extension in lower case (".tsv", ".jsonl", ...).
std::string lower_extension(const std::filesystem::path& path);

}  // namespace moekit::io
