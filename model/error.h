// moekit::Error: the one exception type of the project. Library code throws, only cli/main.cpp
// prints ("moekit: error: FILE: what is wrong"). Lowest layer, so every folder can use it.
#pragma once
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace moekit {

class Error : public std::runtime_error {
 public:
  Error(const std::filesystem::path& path, const std::string& what);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Throws Error(path, msg). An empty path gives a message without the "path: " prefix.
[[noreturn]] void fail(const std::filesystem::path& path, const std::string& msg);

inline void check(bool cond, const std::filesystem::path& path, const std::string& msg) {
  if (!cond) fail(path, msg);
}

// Text from files (names, JSON parser excerpts, lines) made safe to print: bytes of invalid
// UTF-8, control characters (C0, DEL, C1, including newline and ESC) and bidirectional overrides
// become \xNN per byte; valid printable UTF-8 passes unchanged. Used where messages reach a
// terminal (main's error line, warnings, the progress line).
std::string escape_for_terminal(std::string_view text);

}  // namespace moekit
