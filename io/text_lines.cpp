#include "io/text_lines.h"

#include <algorithm>
#include <cctype>
#include <fstream>

#include "io/utf8.h"
#include "model/error.h"

namespace moekit::io {

namespace fs = std::filesystem;

namespace {

// std::getline with a length limit: a file without newlines must not become one huge string.
bool read_line(std::istream& in, std::string& line, size_t line_no, const fs::path& path) {
  line.clear();
  std::streambuf* buf = in.rdbuf();
  for (int c; (c = buf->sbumpc()) != std::char_traits<char>::eof();) {
    if (c == '\n') return true;
    if (line.size() >= kMaxLineBytes)
      fail(path, at_line(line_no) + "longer than " + std::to_string(kMaxLineBytes) + " bytes (not a text dataset?)");
    line.push_back(static_cast<char>(c));
  }
  return !line.empty();
}

// Keeps nlohmann's reason but drops its "line 1, column C" (every parse is one line here).
std::string json_reason(const nlohmann::json::parse_error& e) {
  std::string msg = e.what();
  size_t col = msg.find("column ");
  size_t colon = col == std::string::npos ? std::string::npos : msg.find(": ", col);
  return colon == std::string::npos ? msg : msg.substr(colon + 2);
}

}  // namespace

std::string at_line(size_t line) { return "line " + std::to_string(line) + ": "; }

bool is_blank(const std::string& s) { return s.find_first_not_of(" \t") == std::string::npos; }

void for_each_line(const fs::path& path, const std::function<void(size_t, const std::string&)>& on_line,
                   bool keep_blank) {
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), path, "cannot open dataset file");
  std::string line;
  size_t line_no = 0, lines = 0;
  while (read_line(in, line, line_no + 1, path)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    long bad = invalid_utf8_at(line);
    if (bad >= 0) fail(path, at_line(line_no) + "invalid UTF-8 at byte " + std::to_string(bad));
    if (is_blank(line)) {
      if (keep_blank) on_line(line_no, line);
      continue;
    }
    check(++lines <= kMaxExamples, path,
          at_line(line_no) + "more than " + std::to_string(kMaxExamples) + " examples (moekit's limit per file)");
    on_line(line_no, line);
  }
  check(!in.bad(), path, "read error after line " + std::to_string(line_no));
}

nlohmann::json parse_json_line(const std::string& line, size_t line_no, const fs::path& path) {
  nlohmann::json obj;
  try {
    obj = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, at_line(line_no) + "invalid JSON at column " + std::to_string(e.byte) + ": " + json_reason(e));
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range 406, a number too large for a double
    std::string msg = e.what();
    const size_t bracket = msg.find("] ");
    fail(path, at_line(line_no) + "invalid JSON: " + (bracket == std::string::npos ? msg : msg.substr(bracket + 2)));
  }
  if (!obj.is_object())
    fail(path, at_line(line_no) + "expected a JSON object, got " + obj.type_name() +
                   (obj.is_array() ? "; hint: use JSON Lines, one object per line" : ""));
  return obj;
}

std::string lower_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

}  // namespace moekit::io
