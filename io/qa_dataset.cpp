#include "io/qa_dataset.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "io/text_lines.h"
#include "model/error.h"

namespace moekit::io {

namespace fs = std::filesystem;
using nlohmann::json;

size_t byte_offset_of_code_point(const std::string& text, size_t cp) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (seen == cp) return i;
    ++seen;
  }
  return seen == cp ? text.size() : std::string::npos;
}

int64_t code_points_before(const std::string& text, size_t byte) {
  int64_t n = 0;
  for (size_t i = 0; i < byte && i < text.size(); ++i) n += (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
  return n;
}

namespace {

std::string string_field(const json& obj, const char* key, const std::string& where, const fs::path& path) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) fail(path, where + "\"" + key + "\" must be a string");
  return it->get<std::string>();
}

Example::Answer answer_at(const std::string& context, const json& text, const json& start, const std::string& where,
                          const fs::path& path) {
  if (!text.is_string() || !start.is_number_integer() || start.get<int64_t>() < 0)
    fail(path, where + "an answer needs a string \"text\" and a non-negative integer \"answer_start\"");
  Example::Answer a{text.get<std::string>(), 0};
  const size_t cp = static_cast<size_t>(start.get<int64_t>());
  a.begin = byte_offset_of_code_point(context, cp);
  if (a.begin == std::string::npos || context.compare(a.begin, a.text.size(), a.text) != 0)
    fail(path, where + "the answer \"" + a.text.substr(0, 80) + "\" is not at answer_start " + std::to_string(cp) +
                   " of the context (answer_start counts Unicode code points)");
  if (a.text.empty()) fail(path, where + "an answer text is empty");
  return a;
}

// answers: {"text": [...], "answer_start": [...]} or [{"text", "answer_start"}, ...].
std::vector<Example::Answer> parse_answers(const std::string& context, const json& answers, const std::string& where,
                                           const fs::path& path) {
  std::vector<Example::Answer> out;
  if (answers.is_object()) {
    const auto t = answers.find("text"), s = answers.find("answer_start");
    if (t == answers.end() || s == answers.end() || !t->is_array() || !s->is_array() || t->size() != s->size())
      fail(path, where + "\"answers\" must hold equally long \"text\" and \"answer_start\" lists");
    for (size_t i = 0; i < t->size(); ++i) out.push_back(answer_at(context, (*t)[i], (*s)[i], where, path));
  } else if (answers.is_array()) {
    for (const json& a : answers) {
      if (!a.is_object() || !a.contains("text") || !a.contains("answer_start"))
        fail(path, where + "each answer must be {\"text\": ..., \"answer_start\": ...}");
      out.push_back(answer_at(context, a["text"], a["answer_start"], where, path));
    }
  } else {
    fail(path, where + "\"answers\" must be a list or {\"text\": [...], \"answer_start\": [...]}");
  }
  return out;
}

Example qa_example(const json& q, const std::string& context, const std::string& where, const fs::path& path,
                   bool require_labels) {
  if (!q.is_object()) fail(path, where + "a question must be a JSON object");
  Example e;
  e.qa = true;
  e.has_pair = true;
  e.text = string_field(q, "question", where, path);
  e.text_pair = context;
  if (const auto id = q.find("id"); id != q.end() && id->is_string()) e.qa_id = id->get<std::string>();
  const auto answers = q.find("answers");
  if (answers == q.end() || answers->is_null()) {
    if (require_labels) fail(path, where + "missing \"answers\" (an unanswerable question has an empty list)");
    return e;
  }
  e.answers = parse_answers(context, *answers, where, path);
  const bool impossible = q.value("is_impossible", false);
  if (impossible) e.answers.clear();  // SQuAD 2.0 lists plausible answers of impossible questions
  e.qa_labelled = true;
  return e;
}

std::vector<Example> read_squad_json(const fs::path& path, bool require_labels) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot read: " + ec.message());
  if (size > kMaxSquadBytes) fail(path, "larger than " + std::to_string(kMaxSquadBytes >> 20) + " MiB; split it");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(path, std::string("not valid SQuAD JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array())
    fail(path, "expected SQuAD's {\"data\": [{\"paragraphs\": [...]}]}");
  std::vector<Example> out;
  for (const json& article : j["data"]) {
    if (!article.is_object() || !article.contains("paragraphs") || !article["paragraphs"].is_array())
      fail(path, "every \"data\" entry needs a \"paragraphs\" list");
    for (const json& p : article["paragraphs"]) {
      if (!p.is_object() || !p.contains("qas") || !p["qas"].is_array())
        fail(path, "every paragraph needs a \"context\" string and a \"qas\" list");
      const std::string context = string_field(p, "context", "", path);
      for (const json& q : p["qas"]) {
        const std::string id = q.is_object() && q.contains("id") && q["id"].is_string() ? q["id"].get<std::string>() : "";
        out.push_back(qa_example(q, context, "question " + (id.empty() ? "#" + std::to_string(out.size()) : id) + ": ",
                                 path, require_labels));
      }
    }
  }
  if (out.empty()) fail(path, "no questions");
  return out;
}

}  // namespace

std::vector<Example> read_qa_dataset(const fs::path& path, bool require_labels) {
  const std::string ext = lower_extension(path);
  if (ext == ".json") return read_squad_json(path, require_labels);
  if (ext != ".jsonl") fail(path, "question answering data must be SQuAD .json or .jsonl (one question a line)");
  std::vector<Example> out;
  for_each_line(path, [&](size_t line_no, const std::string& line) {
    const json obj = parse_json_line(line, line_no, path);
    const std::string where = at_line(line_no);
    out.push_back(qa_example(obj, string_field(obj, "context", where, path), where, path, require_labels));
  });
  if (out.empty()) fail(path, "no questions");
  return out;
}

}  // namespace moekit::io
