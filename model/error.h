// moekit::Error: the one exception type of the project. Library code throws, only cli/main.cpp
// prints ("moekit: error: FILE: what is wrong"). Lowest layer, so every folder can use it.
#pragma once
#include <filesystem>
#include <stdexcept>
#include <string>

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

}  // namespace moekit
