#include "io/token_dataset.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <unordered_map>

#include "io/text_lines.h"
#include "model/error.h"

namespace moekit::io {

namespace fs = std::filesystem;

namespace {

// A sentence longer than this is not a sentence (a CoNLL file that lost its blank lines).
constexpr size_t kMaxWords = 100'000;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// One sentence before tag resolution.
struct TaggedRow {
  size_t line = 0;
  std::vector<std::string> words, tags;  // tags empty = unlabeled
  std::vector<size_t> word_lines;        // CoNLL: the line of each word (errors name it)
  size_t line_of(size_t word) const { return word < word_lines.size() ? word_lines[word] : line; }
};

std::string join_words(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) text += (text.empty() ? "" : " ") + w;
  return text;
}

std::vector<std::string> string_items(const nlohmann::json& v, const char* field, bool allow_integers,
                                      size_t line, const fs::path& path) {
  if (!v.is_array()) fail(path, at_line(line) + "\"" + field + "\": expected a list, got " + v.type_name());
  std::vector<std::string> out;
  for (const auto& item : v) {
    if (item.is_string())
      out.push_back(item.get<std::string>());
    else if (allow_integers && item.is_number_integer())
      out.push_back(item.dump());
    else
      fail(path, at_line(line) + "\"" + field + "\": expected " + (allow_integers ? "names or integers" : "strings") +
                     ", got an item of type " + item.type_name());
  }
  return out;
}

std::vector<TaggedRow> read_jsonl_rows(const fs::path& path) {
  std::vector<TaggedRow> rows;
  for_each_line(path, [&](size_t line_no, const std::string& line) {
    const nlohmann::json obj = parse_json_line(line, line_no, path);
    TaggedRow row;
    row.line = line_no;
    if (auto t = obj.find("tokens"); t != obj.end() && !t->is_null()) {
      row.words = string_items(*t, "tokens", false, line_no, path);
    } else if (auto x = obj.find("text"); x != obj.end() && x->is_string()) {
      for (WordSpan& w : split_words(x->get<std::string>())) row.words.push_back(std::move(w.text));
    } else {
      fail(path, at_line(line_no) + "missing \"tokens\" (a token-classification example is {\"tokens\": [...], \"tags\": [...]})");
    }
    auto tags = obj.find("tags");
    if (tags == obj.end() || tags->is_null()) tags = obj.find("ner_tags");
    if (tags != obj.end() && !tags->is_null()) {
      const char* field = obj.contains("tags") ? "tags" : "ner_tags";
      row.tags = string_items(*tags, field, true, line_no, path);
      if (row.tags.size() != row.words.size())
        fail(path, at_line(line_no) + std::to_string(row.tags.size()) + " " + field + " for " +
                       std::to_string(row.words.size()) + " tokens (one tag per token)");
    }
    rows.push_back(std::move(row));
  });
  return rows;
}

std::vector<TaggedRow> read_conll_rows(const fs::path& path) {
  std::vector<TaggedRow> rows;
  TaggedRow current;
  int columns = 0;  // of the current sentence: 1 = words only
  auto finish = [&] {
    if (!current.words.empty()) rows.push_back(std::move(current));
    current = TaggedRow{};
    columns = 0;
  };
  for_each_line(
      path,
      [&](size_t line_no, const std::string& line) {
        std::vector<WordSpan> cells = split_words(line);
        // Any whitespace-only line (vertical tabs and form feeds too) ends a sentence.
        if (cells.empty()) return finish();
        if (cells.front().text == "-DOCSTART-") return finish();
        const int n = cells.size() == 1 ? 1 : 2;
        if (columns && n != columns)
          fail(path, at_line(line_no) + (n == 1 ? "a word without a tag" : "a tagged word") + " in a sentence whose " +
                         "first line " + (columns == 1 ? "had no tag" : "had one") + " (the tag is the last column)");
        if (current.words.empty()) current.line = line_no;
        columns = n;
        check(current.words.size() < kMaxWords, path,
              at_line(line_no) + "a sentence of more than " + std::to_string(kMaxWords) +
                  " words (are the blank lines between sentences missing?)");
        current.words.push_back(cells.front().text);
        current.word_lines.push_back(line_no);
        if (n == 2) current.tags.push_back(cells.back().text);
      },
      true);
  finish();
  return rows;
}

std::vector<TaggedRow> read_rows(const fs::path& path) {
  const std::string ext = lower_extension(path);
  std::vector<TaggedRow> rows;
  if (ext == ".jsonl" || ext == ".json") {
    rows = read_jsonl_rows(path);
  } else if (ext == ".conll") {
    rows = read_conll_rows(path);
  } else if (ext == ".txt") {
    for_each_line(path, [&](size_t line_no, const std::string& line) {
      TaggedRow row;
      row.line = line_no;
      for (WordSpan& w : split_words(line)) row.words.push_back(std::move(w.text));
      rows.push_back(std::move(row));
    });
  } else {
    fail(path, "unknown token-classification data format '" + ext +
                   "'; expected .jsonl ({\"tokens\": [...], \"tags\": [...]}), .conll or .txt");
  }
  check(!rows.empty(), path, "empty dataset: no examples");
  for (const TaggedRow& row : rows)
    if (row.words.empty()) fail(path, at_line(row.line) + "no tokens");
  return rows;
}

bool parse_index(const std::string& s, long long& v) {
  if (s.empty() || !std::all_of(s.begin() + (s[0] == '-'), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

std::vector<WordSpan> split_words(const std::string& text) {
  std::vector<WordSpan> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    const size_t begin = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > begin) out.push_back({text.substr(begin, i - begin), begin, i});
  }
  return out;
}

bool is_iob2_tag(const std::string& tag) {
  return tag == "O" || (tag.size() > 2 && (tag[0] == 'B' || tag[0] == 'I') && tag[1] == '-');
}

std::vector<Example> read_token_dataset(const fs::path& path, const std::vector<std::string>& labels,
                                        bool require_labels) {
  std::unordered_map<std::string, int> by_name;
  for (size_t i = 0; i < labels.size(); ++i) by_name.emplace(labels[i], static_cast<int>(i));
  auto resolve = [&](const std::string& tag, size_t line) {
    if (auto it = by_name.find(tag); it != by_name.end()) return it->second;
    long long index = 0;
    if (parse_index(tag, index) && index >= 0 && index < static_cast<long long>(labels.size()))
      return static_cast<int>(index);
    std::string known;
    for (size_t i = 0; i < labels.size() && i < 8; ++i) known += (i ? ", " : "") + labels[i];
    if (labels.size() > 8) known += ", ... (" + std::to_string(labels.size()) + " in total)";
    fail(path, at_line(line) + "unknown tag '" + tag + "'; the model's tags: " + known);
  };
  std::vector<Example> out;
  for (TaggedRow& row : read_rows(path)) {
    if (row.tags.empty() && require_labels) fail(path, at_line(row.line) + "missing tags");
    Example ex;
    ex.text = join_words(row.words);
    for (size_t w = 0; w < row.tags.size(); ++w) ex.word_tags.push_back(resolve(row.tags[w], row.line_of(w)));
    ex.words = std::move(row.words);
    out.push_back(std::move(ex));
  }
  return out;
}

std::vector<std::string> collect_tags(const fs::path& path) {
  std::set<std::string> tags;
  for (const TaggedRow& row : read_rows(path)) {
    if (row.tags.empty()) fail(path, at_line(row.line) + "missing tags");
    for (size_t w = 0; w < row.tags.size(); ++w) {
      const std::string& tag = row.tags[w];
      long long index = 0;
      if (parse_index(tag, index))
        fail(path, at_line(row.line_of(w)) + "tag " + tag + " is an index; a new model needs tag names (O, B-TYPE, I-TYPE)");
      if (!is_iob2_tag(tag))
        fail(path, at_line(row.line_of(w)) + "tag '" + tag +
                       "' is not IOB2 (O, B-TYPE or I-TYPE), the scheme of the entity metrics");
      tags.insert(tag);
    }
  }
  return {tags.begin(), tags.end()};
}

}  // namespace moekit::io
