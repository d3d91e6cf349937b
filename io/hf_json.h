// Field access for tokenizer.json components: every wrong type or missing key is an Error naming
// the file and the component ("normalizer Replace: \"content\": expected a string, got number").
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace moekit::io::hf_json {

struct Fields {
  const nlohmann::json& j;
  const std::filesystem::path& file;
  std::string what;  // "normalizer Replace"

  [[noreturn]] void fail_with(const std::string& msg) const;
  const nlohmann::json& need(const char* key) const;
  std::string string(const char* key) const;
  std::string string_or(const char* key, const std::string& fallback) const;
  bool boolean_or(const char* key, bool fallback) const;
  int64_t integer_or(const char* key, int64_t fallback) const;
  const nlohmann::json& array(const char* key) const;
  bool has(const char* key) const { return j.contains(key) && !j.at(key).is_null(); }
};

// A whole file of at most max_bytes, as text / parsed as JSON; Error naming the file when it is
// unreadable, larger, or not JSON ("invalid JSON: ...").
std::string read_text_file(const std::filesystem::path& file, uintmax_t max_bytes);
nlohmann::json read_json_file(const std::filesystem::path& file, uintmax_t max_bytes);

// j must be an object with a string "type"; returns it.
std::string type_of(const nlohmann::json& j, const std::filesystem::path& file, const std::string& component);

}  // namespace moekit::io::hf_json
