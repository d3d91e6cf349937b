#include "io/hf_json.h"

#include <fstream>
#include <sstream>

#include "model/error.h"

namespace moekit::io::hf_json {

void Fields::fail_with(const std::string& msg) const { fail(file, what + ": " + msg); }

const nlohmann::json& Fields::need(const char* key) const {
  auto it = j.find(key);
  if (it == j.end()) fail_with(std::string("missing \"") + key + "\"");
  return *it;
}

std::string Fields::string(const char* key) const {
  const auto& v = need(key);
  if (!v.is_string()) fail_with(std::string("\"") + key + "\": expected a string, got " + v.type_name());
  return v.get<std::string>();
}

std::string Fields::string_or(const char* key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

bool Fields::boolean_or(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_boolean()) fail_with(std::string("\"") + key + "\": expected a boolean, got " + v.type_name());
  return v.get<bool>();
}

int64_t Fields::integer_or(const char* key, int64_t fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number_integer()) fail_with(std::string("\"") + key + "\": expected an integer, got " + v.type_name());
  return v.get<int64_t>();
}

const nlohmann::json& Fields::array(const char* key) const {
  const auto& v = need(key);
  if (!v.is_array()) fail_with(std::string("\"") + key + "\": expected an array, got " + v.type_name());
  return v;
}

std::string read_text_file(const std::filesystem::path& file, uintmax_t max_bytes) {
  std::error_code ec;
  const uintmax_t bytes = std::filesystem::file_size(file, ec);
  check(!ec, file, "cannot read");
  check(bytes <= max_bytes, file,
        "file of " + std::to_string(bytes) + " bytes is larger than moekit allows (" + std::to_string(max_bytes) + ")");
  std::ifstream in(file, std::ios::binary);
  check(static_cast<bool>(in), file, "cannot open");
  std::stringstream buf;
  buf << in.rdbuf();
  check(!in.bad(), file, "read error");
  return buf.str();
}

nlohmann::json read_json_file(const std::filesystem::path& file, uintmax_t max_bytes) {
  const std::string text = read_text_file(file, max_bytes);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(file, std::string("invalid JSON: ") + e.what());
  }
}

std::string type_of(const nlohmann::json& j, const std::filesystem::path& file, const std::string& component) {
  if (!j.is_object()) fail(file, component + ": expected an object, got " + j.type_name());
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) fail(file, component + ": missing \"type\"");
  return it->get<std::string>();
}

}  // namespace moekit::io::hf_json
