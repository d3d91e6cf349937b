// Helpers for recipe tests that drive the real `moekit` binary (its option table is the CLI's).
#pragma once
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace moekit::test {

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

// Runs `moekit ARGS` (ARGS already shell-quoted) with one OpenMP thread; `env`: NAME=VALUE words.
inline CommandResult run_moekit(const std::string& args, const std::string& env = "") {
  CommandResult r;
  const std::string cmd = env + " OMP_NUM_THREADS=1 '" MOEKIT_BINARY "' --quiet " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.output.append(buf, n);
  const int status = pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string quote(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// A fresh, empty directory under the test process's scratch root (tests/support/temp_dir.h),
// which is removed at exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name) : path(scratch_dir(name)) {}
};

}  // namespace moekit::test
